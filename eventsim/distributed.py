"""Evaluation on Dask: samples are traced on workers, results are reduced in sample order.

``eventsim evaluate --workers N`` starts a :class:`dask.distributed.LocalCluster` of N one-thread
worker processes; ``--scheduler ADDRESS`` uses an existing cluster. Needs the optional extra
``pip install "eventsim[distributed]"``.

Work split
    Samples go out in chunks of decreasing size (guided scheduling: each chunk is about
    1/(2·workers) of what is left, at most :data:`MAX_CHUNK`), so there are few tasks while much
    is left and small ones at the end, when the workers must finish together. Workers read their
    samples themselves from the dataset handle; the driver only waits. A recording longer than
    ``window_us`` (event input) is simulated as a chain of window tasks: the chunk task simulates
    its first window and returns a :class:`~eventsim.samples.Continuation` (the engine state at
    the window's end); the driver submits the next window with that state, at a higher priority
    than chunks and preferably on the worker that ran the previous window (which keeps the split
    recordings it read last, up to :data:`RECENT_BYTES`), until the last window returns the
    trace. Chains of different samples run at the same time; a lost worker redoes one window,
    since the state it started from is held in the task itself.

Determinism
    Every sample is simulated independently (no shared state, explicit seeds), a split sample
    gives the trace of the unsplit run (the engines' pause/resume is exact, a test), each task
    returns ``(index, trace or continuation)`` pairs, and the reduction sorts by index before the
    same :func:`eventsim.evaluate.aggregate` the serial run uses. So the results equal the serial
    run's exactly, whatever the order in which tasks finish, whichever worker ran them, and
    however often Dask re-ran a task after losing a worker (a re-run recomputes the same value;
    an index is stored, and a chain started, once). Only ``wall_s``, ``samples_per_s`` and
    ``workers`` (per-worker throughput) differ.

Shipping
    The network and the dataset handle are submitted once as tasks (not ``scatter``-ed: scattered
    data is lost for good with the worker that held it); each worker fetches them once and keeps
    them while the run lasts, and warms the engine's kernels once (``NUMBA_CACHE_DIR`` is inherited).

Local cluster settings
    Dask's defaults cost this workload a quarter of its speed on small machines: the nanny sets
    ``MALLOC_TRIM_THRESHOLD_=65536`` in workers (measured: 2.3× the page faults and +25 % CPU per
    sample, from allocations that glibc would otherwise recycle), and the statistical profiler,
    event-loop ticks and monitors take ~15 % of a core while idle. :func:`open_client` switches
    these off for the LocalCluster it starts (:data:`LOCAL_CLUSTER_CONFIG`); on a cluster of your
    own, start the workers with ``MALLOC_TRIM_THRESHOLD_`` unset for the same effect.
"""
from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from typing import Any, Sequence

__all__ = ["trace_distributed", "open_client", "chunk_sizes", "MAX_CHUNK", "LOCAL_CLUSTER_CONFIG"]

#: largest chunk of samples per task (bounds the work a lost worker takes with it, and the
#: granularity of the progress bar)
MAX_CHUNK = 64

#: Dask settings under which :func:`open_client` starts a LocalCluster (see the module docstring)
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing-interval": "1s",
}


def _dask():
    try:
        import dask  # noqa: F401
        from dask import distributed
    except ImportError:
        raise ValueError('distributed evaluation needs Dask: pip install "eventsim[distributed]"') from None
    return distributed


def open_client(workers: int | None = None, scheduler: str | None = None):
    """A Dask client: connected to ``scheduler``, or on a new LocalCluster of ``workers`` processes
    (one thread each, started with :data:`LOCAL_CLUSTER_CONFIG`)."""
    distributed = _dask()
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    if workers is None or workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    import dask
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        return distributed.Client(cluster)


def chunk_sizes(n: int, workers: int, max_chunk: int = MAX_CHUNK) -> list[int]:
    """Guided chunk sizes for ``n`` samples on ``workers`` workers: ``ceil(left / (2·workers))``,
    at most ``max_chunk``, so the last tasks are single samples. (Each task costs ~15 ms of CPU in
    Dask on a small machine, measured: 1100 N-MNIST samples on 2 workers make 30 tasks.)

    >>> chunk_sizes(20, 2)
    [5, 4, 3, 2, 2, 1, 1, 1, 1]
    """
    sizes, left = [], n
    while left > 0:
        size = min(max_chunk, max(1, math.ceil(left / (2 * max(1, workers)))), left)
        sizes.append(size)
        left -= size
    return sizes


def _hold(obj):
    """A task whose value is ``obj``: shipped to each worker once, recomputed if lost."""
    return obj


def _where() -> str:
    from dask.distributed import get_worker
    try:
        return get_worker().address
    except ValueError:
        return f"pid-{os.getpid()}"


#: per worker process: the split recordings read last, ``(run, index) -> events``, so that the next
#: window (sent to the same worker when it is free) does not read the recording again; at most
#: :data:`RECENT_RECORDINGS` of them and :data:`RECENT_BYTES` in all
_RECENT: "OrderedDict[tuple, Any]" = OrderedDict()
RECENT_RECORDINGS = 8
RECENT_BYTES = 256 << 20


def _remember(key: tuple, events) -> None:
    _RECENT[key] = events
    _RECENT.move_to_end(key)
    while len(_RECENT) > 1 and (len(_RECENT) > RECENT_RECORDINGS
                                or sum(getattr(e, "nbytes", 0) for e in _RECENT.values()) > RECENT_BYTES):
        _RECENT.popitem(last=False)


def _trace_chunk(network, dataset, indices, options, run=None):
    """Worker side: trace a chunk of samples (the first window of long ones); returns
    (worker address, seconds, [(index, SampleTrace or Continuation)])."""
    from .samples import Continuation, start_sample
    t0 = time.perf_counter()
    out = []
    for i in indices:
        events, label = dataset[i][:2]
        item = start_sample(network, events, label, i, **options)
        if isinstance(item, Continuation):
            _remember((run, i), events)
        out.append((i, item))
    return _where(), time.perf_counter() - t0, out


def _trace_window(network, dataset, cont, run=None):
    """Worker side: the next window of a split sample."""
    from .samples import Continuation, continue_sample
    t0 = time.perf_counter()
    key = (run, cont.index)
    events = _RECENT.pop(key) if key in _RECENT else dataset[cont.index][0]
    out = continue_sample(network, events, cont)
    if isinstance(out, Continuation):
        _remember(key, events)
    return _where(), time.perf_counter() - t0, [(cont.index, out)]


def _warm(network, engine, dt_us):  # pragma: no cover - runs on the workers
    """Load the engine's compiled kernels once per worker (a one-event recording)."""
    import numpy as np

    from .engines import simulate
    try:
        if len(network.input_shape) == 3 and network.input_shape[0] in (1, 2):
            ev = np.zeros(1, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
            # the kernel the data set loop uses (eventsim.samples asks the async engine for its fast path)
            simulate(network, ev, engine=engine, dt_us=dt_us, **({"fast_path": True} if engine == "async" else {}))
        else:
            simulate(network, np.zeros(network.input_shape), engine=engine, dt_us=dt_us, steps=1,
                     input_kind="analog")
    except Exception:       # warming is an optimisation: a real error shows up in the run itself
        pass
    return True


def trace_distributed(network, dataset: Sequence, indices: Sequence[int], options: dict, *,
                      workers: int | None = None, scheduler: str | None = None, chunk: int | None = None,
                      progress=None, client=None, on_trace=None, already: int = 0) -> tuple[list, dict]:
    """Trace ``indices`` of ``dataset`` on Dask; returns (traces sorted by index, per-worker stats).

    ``options`` are :func:`eventsim.samples.start_sample`'s (``engine``, ``dt_us``, ``steps``,
    ``synop_convention``, ``seed``, ``window_us``). ``chunk`` fixes the chunk size (default:
    :func:`chunk_sizes`). ``on_trace(trace)`` is called in the client process for each sample as
    it arrives (once per index); ``progress.update(n)`` with ``already`` + the samples received.
    """
    distributed = _dask()
    from .samples import Continuation
    own = client is None
    if own:
        client = open_client(workers, scheduler)
    try:
        n_workers = max(1, sum(client.nthreads().values()))
        net_f = client.submit(_hold, network, pure=False)
        data_f = client.submit(_hold, dataset, pure=False)
        client.run(_warm, network, options.get("engine", "stepped"), options.get("dt_us"))
        indices = list(indices)
        sizes = [chunk] * math.ceil(len(indices) / chunk) if chunk else chunk_sizes(len(indices), n_workers)
        chunks, pos = [], 0
        for size in sizes:
            chunks.append(indices[pos:pos + size])
            pos += size
        run = data_f.key
        futures = [client.submit(_trace_chunk, net_f, data_f, c, options, run, pure=False, retries=2) for c in chunks]
        pending = distributed.as_completed(futures)
        results: dict[int, Any] = {}
        chained: dict[int, float] = {}
        stats: dict[str, dict] = {}
        for fut in pending:
            address, seconds, pairs = fut.result()
            fut.release()
            done_here = 0
            for i, item in pairs:
                if isinstance(item, Continuation):
                    if item.state.t_us > chained.get(i, -math.inf) and i not in results:
                        chained[i] = item.state.t_us       # a re-run's duplicate window is not chained twice
                        pending.add(client.submit(_trace_window, net_f, data_f, item, run, pure=False, retries=2,
                                                  priority=1, workers=[address], allow_other_workers=True))
                    continue
                if item.index != i:           # pragma: no cover - a broken dataset or engine
                    raise RuntimeError(f"sample {i} came back as sample {item.index}")
                done_here += 1
                if i not in results:
                    results[i] = item
                    chained.pop(i, None)
                    if on_trace is not None:
                        on_trace(item)
            s = stats.setdefault(address, {"samples": 0, "busy_s": 0.0})
            s["samples"] += done_here
            s["busy_s"] += seconds
            if progress is not None:
                progress.update(already + len(results))
        missing = sorted(set(indices) - set(results))
        if missing:
            raise RuntimeError(f"distributed evaluation lost samples {missing[:5]}")
        for s in stats.values():
            s["samples_per_s"] = s["samples"] / s["busy_s"] if s["busy_s"] > 0 else None
        return [results[i] for i in sorted(results)], stats
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
