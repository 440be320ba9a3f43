"""A checkpoint whose architecture is recognised but not supported gets an error naming the feature
and where it is, from detection (``es.load``) and from every importer forced with ``format=`` —
never "missing key" or "no known layout"."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import eventsim as es  # noqa: E402
from eventsim.checkpoints import CheckpointError  # noqa: E402


class TorchvisionStyleBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(4, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)
        self.downsample = nn.Sequential(nn.Conv2d(4, 8, 1, 2, bias=False), nn.BatchNorm2d(8))


class TorchvisionStyleResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(TorchvisionStyleBlock())
        self.fc = nn.Linear(8, 10)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.rnn = nn.LSTM(16, 8)
        self.fc = nn.Linear(8, 10)


NEVER = r"missing key|no known layout|unknown key"


@pytest.mark.parametrize("model, feature", [
    (TorchvisionStyleResNet, r"residual shortcut at 'layer1\.0\.downsample'"),
    (Recurrent, r"recurrent layer \(LSTM/GRU/RNN\) at 'rnn'"),
])
def test_detection_names_the_feature(tmp_path, model, feature):
    path = tmp_path / "m.pth"
    torch.save(model().state_dict(), path)
    with pytest.raises(CheckpointError, match=feature + r": recognised, but no eventsim importer") as info:
        es.load(path, input_shape=(3, 32, 32))
    assert not __import__("re").search(NEVER, str(info.value))


@pytest.mark.parametrize("fmt, layout", [("qcfs", "QCFS"), ("diet", "DIET-SNN"), ("aoi", "AOI-SNN"),
                                         ("bntt", "BNTT")])
def test_forced_formats_name_the_feature(tmp_path, fmt, layout):
    path = tmp_path / "m.pth"
    torch.save(TorchvisionStyleResNet().state_dict(), path)
    with pytest.raises(CheckpointError, match=rf"residual shortcut at 'layer1\.0\.downsample' is not part of the "
                                              rf"{layout}") as info:
        es.load(path, format=fmt, input_shape=(3, 32, 32), pool="avg") if fmt in ("qcfs", "aoi") else \
            es.load(path, format=fmt, input_shape=(3, 32, 32))
    assert not __import__("re").search(NEVER, str(info.value))


def test_diet_resnet_with_a_deep_classifier_is_named(tmp_path):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "seeds"))
    import diet_resnet
    model = diet_resnet.DietResNet(diet_resnet.CONFIGS["resnet12"], width=0.0625)
    state = model.state_dict()
    state["classifier.3.weight"] = torch.zeros(10, 10)
    torch.save(state, tmp_path / "d.pth")
    with pytest.raises(CheckpointError, match=r"a classifier of 2 Linear layers \(classifier \[0, 3\]\)"):
        es.load(tmp_path / "d.pth", input_shape=(3, 32, 32))
