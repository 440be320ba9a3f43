"""Evaluation on Dask: samples are traced on workers, results are reduced in sample order.

``eventsim evaluate --workers N`` starts a :class:`dask.distributed.LocalCluster` of N one-thread
worker processes; ``--scheduler ADDRESS`` uses an existing cluster. Needs the optional extra
``pip install "eventsim[distributed]"``.

Determinism: every sample is simulated independently (no shared state, explicit seeds), each
task returns ``(index, trace)`` pairs, and the reduction sorts by index before the same
:func:`eventsim.evaluate.aggregate` the serial run uses, so the results equal the serial run's
exactly, whatever the order in which tasks finish, whichever worker ran them, and however often
Dask re-ran a task after losing a worker (a re-run recomputes the same trace; an index is stored
once). Only ``wall_s``, ``samples_per_s`` and ``workers`` (per-worker throughput) differ.

The network and the dataset handle are sent to every worker once (``scatter(broadcast=True)``);
workers keep their own Numba cache (``NUMBA_CACHE_DIR`` is inherited) and warm the kernels once.
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

__all__ = ["trace_distributed", "open_client", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 8


def _dask():
    try:
        import dask  # noqa: F401
        from dask import distributed
    except ImportError:
        raise ValueError('distributed evaluation needs Dask: pip install "eventsim[distributed]"') from None
    return distributed


def open_client(workers: int | None = None, scheduler: str | None = None):
    """A Dask client: connected to ``scheduler``, or on a new LocalCluster of ``workers`` processes."""
    distributed = _dask()
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    if workers is None or workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    return distributed.Client(cluster)


def _trace_chunk(network, dataset, indices, options):
    """Worker side: trace a chunk of samples; returns (worker address, seconds, [(index, trace)])."""
    from dask.distributed import get_worker

    from .evaluate import trace_sample
    t0 = time.perf_counter()
    out = []
    for i in indices:
        events, label = dataset[i][:2]
        out.append((i, trace_sample(network, events, label, i, **options)))
    try:
        address = get_worker().address
    except ValueError:
        address = f"pid-{os.getpid()}"
    return address, time.perf_counter() - t0, out


def _warm(network):  # pragma: no cover - runs on the workers
    import numpy as np

    from .engines import simulate
    simulate(network, np.zeros((1,) + network.input_shape), input_kind="analog")
    return True


def trace_distributed(network, dataset: Sequence, indices: Sequence[int], options: dict, *,
                      workers: int | None = None, scheduler: str | None = None, chunk: int = DEFAULT_CHUNK,
                      progress=None, client=None, on_trace=None, already: int = 0) -> tuple[list, dict]:
    """Trace ``indices`` of ``dataset`` on Dask; returns (traces sorted by index, per-worker stats).

    ``on_trace(trace)`` is called in the client process for each sample as its chunk arrives
    (once per index); ``progress.update(n)`` with ``already`` + the samples received so far.
    """
    distributed = _dask()
    own = client is None
    if own:
        client = open_client(workers, scheduler)
    try:
        net_f = client.scatter(network, broadcast=True)
        data_f = client.scatter(dataset, broadcast=True)
        client.run(_warm, network)
        chunks = [list(indices[i:i + chunk]) for i in range(0, len(indices), chunk)]
        futures = [client.submit(_trace_chunk, net_f, data_f, c, options, pure=False, retries=2) for c in chunks]
        results: dict[int, Any] = {}
        stats: dict[str, dict] = {}
        for fut in distributed.as_completed(futures):
            address, seconds, pairs = fut.result()
            for i, trace in pairs:
                if i not in results:
                    results[i] = trace
                    if on_trace is not None:
                        on_trace(trace)
            s = stats.setdefault(address, {"samples": 0, "busy_s": 0.0})
            s["samples"] += len(pairs)
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
