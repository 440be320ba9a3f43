"""All 1100 shared N-MNIST files: event counts, durations and labels stated in nmnist/SOURCE.md."""
from __future__ import annotations

import numpy as np
import pytest

from eventsim import events as E

pytestmark = pytest.mark.realdata


def test_all_nmnist_files_counts_durations_labels(nmnist_dir):
    counts, last_t = [], []
    test = E.LocalNMNIST(nmnist_dir, "test")
    train = E.LocalNMNIST(nmnist_dir, "train")
    assert (len(test), len(train)) == (100, 1000)
    for ds in (test, train):
        for path in ds.files:
            raw = np.fromfile(path, dtype=np.uint8)
            ev = E.read_nmnist(path)  # raises on decreasing timestamps or x, y outside 34 x 34
            assert ev.size * 5 == raw.size
            counts.append(ev.size)
            last_t.append(int(ev["t"][-1]))
    counts, last_t = np.array(counts), np.array(last_t)
    # SOURCE.md: events per file 1069 to 7152, median 4163; last timestamp 296,841 to 336,040 µs
    assert (counts.min(), counts.max(), int(np.median(counts))) == (1069, 7152, 4163)
    assert (last_t.min(), last_t.max()) == (296_841, 336_040)
    # SOURCE.md per-class counts, and the list files agree with labels.csv
    assert np.bincount(test.labels, minlength=10).tolist() == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    assert np.bincount(train.labels, minlength=10).tolist() == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    listed = dict(line.split() for line in (nmnist_dir / "test100.txt").read_text().splitlines()[1:] if line.strip())
    assert [int(listed[p.stem]) for p in test.files] == test.labels.tolist()
