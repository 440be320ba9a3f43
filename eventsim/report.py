"""Plain-text tables for networks and results (figures live in :mod:`eventsim.figures`)."""
from __future__ import annotations


def describe_layer(layer) -> str:
    """One-line description of a layer's configuration (:meth:`eventsim.network.Layer.describe`)."""
    return layer.describe()


def network_table(network) -> str:
    """Layers, output shapes, configuration and parameter counts (:meth:`eventsim.network.Network.summary`)."""
    return network.summary()


def summary_table(ev) -> str:
    """The printed summary: accuracy, latency and cost at the cutoff, for the full-length run, and
    what the cutoff saved (or, for accuracy, what it cost)."""
    s = ev.summary
    c = s["cutoff"]
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
    saved = lambda cut, end: "" if not end else f"{1 - cut / end:>14.1%}"
    epsilon = c.get("epsilon", c.get("calibration_epsilon"))
    policy = c["policy"] + (f" (ε={epsilon:g})" if epsilon is not None else "")
    acc, acc_end = s["accuracy"], s["accuracy_at_end"]
    cost = "" if acc is None or acc_end is None else f"{'cost ' + format(acc_end - acc, '+.3f'):>14}"
    rows = [("accuracy", fmt(acc, ">14.3f"), fmt(acc_end, ">14.3f"), cost)]
    for label, cut, end in (("latency mean µs", c["t_us_mean"], s["curve"][-1]["t_us"]),
                            ("synops / sample", s["synops_per_sample"], s["synops_per_sample_at_end"]),
                            ("energy pJ / sample", s["energy_pj_per_sample"], s["energy_pj_per_sample_at_end"]),
                            ("spikes / sample", s["spikes_per_sample"], s.get("spikes_per_sample_at_end"))):
        rows.append((label, f"{cut:>14,.0f}", "" if end is None else f"{end:>14,.0f}",
                     "" if end is None else saved(cut, end)))
    lines = [f"engine {s['engine']}  grid {s['dt_us']:g} µs  samples {s['samples']}  cutoff {policy}  "
             f"energy table {s['energy_table']['name']}  synops convention {s['synop_convention']}",
             f"{'':<22}{'at cutoff':>14}{'full length':>14}{'saved':>14}"]
    lines += [f"{label:<22}{a:>14}{b:>14}{d:>14}".rstrip() for label, a, b, d in rows]
    if s.get("samples_per_s"):
        lines.append(f"{'throughput':<22}{s['samples_per_s']:>11.1f} samples/s")
    return "\n".join(lines)
