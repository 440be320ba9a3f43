"""Event-camera data: readers, validation, frame encodings, tonic adapter, HDF5 cache, emulator, demo set.

Events are a structured NumPy array ``t`` (int64 µs), ``x``, ``y`` (int16), ``p`` (int8, 1 = ON),
sorted by ``t`` (:data:`EVENT_DTYPE`). Any structured array with these field names (tonic's) is
accepted wherever events are expected.

>>> import eventsim as es
>>> events = es.read_events("recording.bin")                 # doctest: +SKIP
>>> frames = es.events.to_frames(events, (2, 34, 34), n_bins=10)  # doctest: +SKIP
"""
from __future__ import annotations

from ._core import EVENT_DTYPE, as_events, empty_events, make_events
from .aedat2 import read_aedat2, read_aedat2_header
from .aedat3 import read_aedat3
from .aedat4 import read_aedat4
from .cache import EventCache, build_cache, open_cache
from .folders import FileSamples, folder_samples
from .demo import load_demo
from .emulator import EmulatorParams, emulate_events
from .frames import bin_edges_us, bin_index, crop_events, time_window, to_frames
from .io import (READERS, EventStream, Recording, describe_recording, detect_format, format_recording, iter_events,
                 read_events, read_recording)
from .nmnist import read_nmnist
from .prophesee import read_prophesee_dat
from .raw import TRIGGER_DTYPE, iter_raw, read_raw
from .fitting import fit_recording
from .transforms import parse_transforms
from .tonic_adapter import LocalNMNIST, TonicAdapter, from_tonic, load_tonic_dataset
from .validate import normalize_sensor_size, validate_events

__all__ = [
    "EVENT_DTYPE", "make_events", "as_events", "empty_events", "validate_events", "normalize_sensor_size",
    "read_events", "read_recording", "Recording", "detect_format", "READERS", "describe_recording",
    "format_recording", "read_nmnist", "read_aedat2", "read_aedat2_header", "read_aedat4", "read_prophesee_dat",
    "to_frames", "bin_index", "bin_edges_us", "crop_events", "time_window",
    "build_cache", "open_cache", "EventCache", "FileSamples", "folder_samples", "from_tonic", "TonicAdapter", "load_tonic_dataset", "LocalNMNIST",
    "EmulatorParams", "emulate_events", "load_demo",
    "read_aedat3", "read_raw", "iter_raw", "TRIGGER_DTYPE", "iter_events", "EventStream", "fit_recording",
    "parse_transforms",
]
