"""PNG plots (matplotlib, the optional ``plot`` extra, imported on use).

- ``occupancy_heatmap``: per host and NUMA node, the share of CPU and of memory in use after a
  placement (absent nodes blank).
- ``replay_plot``: pending requests, CPU / memory utilisation and hosts in use over the time of
  a trace replay (with the moves made, when it rebalanced).
- ``rebalance_plot``: several replays of one trace side by side (without rebalancing, with
  migration plans, with the descheduler-like baseline): hosts in use, pending requests and the
  moves made so far, over time.
"""
from __future__ import annotations

import numpy as np

from ..api import Placement


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ValueError("plots need matplotlib: pip install 'numasched[plot]' "
                         "(or pip install matplotlib)") from None
    matplotlib.use("Agg")   # files only; never open a window
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> None:
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    except ValueError as exc:   # e.g. an unknown file extension
        raise ValueError(f"{path}: cannot write the plot ({exc})") from None
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)


def occupancy(cpu_cap, cpu_free, mem_cap, mem_free) -> tuple[np.ndarray, np.ndarray]:
    """Used share ``[H, K]`` of CPU and memory; NaN where a node is absent."""
    out = []
    for cap, free in ((cpu_cap, cpu_free), (mem_cap, mem_free)):
        cap = np.asarray(cap, dtype=np.float64)
        used = cap - np.asarray(free, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(cap > 0, used / cap, np.nan))
    return out[0], out[1]


def occupancy_heatmap(placement: Placement, names=None, path="occupancy.png", *,
                      title: str | None = None) -> str:
    """Write a heatmap of CPU and memory occupancy per host (columns) and NUMA node (rows)
    after ``placement``; returns ``path``. Host names label the columns when there are few."""
    plt = _pyplot()
    c = placement.cluster
    cpu, mem = occupancy(c.node_cpu, placement.free_cpu, c.node_mem, placement.free_mem)
    hosts, nodes = cpu.shape
    labelled = names is not None and hosts <= 40
    width = min(12.0, max(6.0, 2.5 + 0.35 * hosts))
    height = 1.0 + 2 * (0.45 + 0.3 * nodes) + (1.2 if labelled else 0.3)
    fig, axes = plt.subplots(2, 1, figsize=(width, height), sharex=True, layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")   # absent nodes: grey
    image = None
    for ax, data, label in ((axes[0], cpu, "CPU"), (axes[1], mem, "memory")):
        image = ax.imshow(np.ma.masked_invalid(data.T), aspect="auto", cmap=cmap, vmin=0.0,
                          vmax=1.0, interpolation="nearest")
        ax.set_ylabel(f"{label}\nnode", fontsize=9)
        ax.set_yticks(range(nodes))
        if hosts * nodes <= 80:   # few cells: print the share in each
            for (h, k), value in np.ndenumerate(data):
                if np.isfinite(value):
                    ax.text(h, k, f"{100 * value:.0f}%", ha="center", va="center", fontsize=7,
                            color="white" if value < 0.6 else "black")
    if labelled:
        axes[1].set_xticks(range(hosts))
        axes[1].set_xticklabels([n if len(n) <= 22 else n[:21] + "…" for n in names],
                                rotation=30, ha="right", fontsize=7)
    else:
        axes[1].set_xlabel("host index")
    s = placement.summary()
    axes[0].set_title(title or f"Occupancy after placement: {s['placed']:,} placed, "
                               f"{s['pending']:,} pending, locality {100 * s['locality']:.1f}%",
                      fontsize=9)
    fig.colorbar(image, ax=list(axes), label="share in use", shrink=0.9)
    _save(fig, path)
    return str(path)


def replay_plot(report: dict, path="replay.png", *, title: str | None = None) -> str:
    """Write pending requests and CPU / memory utilisation over time from a replay report
    (``numasched.io.trace.replay``); returns ``path``."""
    plt = _pyplot()
    series = report["series"]
    t = np.array(series["time"], dtype=np.float64)
    hosts = "hosts_used" in series
    fig, axes = plt.subplots(3 if hosts else 2, 1, figsize=(8, 7 if hosts else 5), sharex=True,
                             layout="constrained")
    ax1, ax2 = axes[0], axes[1]
    ax1.step(t, series["pending"], where="post", color="tab:red", label="pending")
    ax1.step(t, series["running"], where="post", color="tab:blue", label="running")
    ax1.set_ylabel("requests")
    ax1.legend(loc="upper left", fontsize=8)
    ax2.step(t, 100 * np.array(series["cpu_utilisation"]), where="post", label="CPU")
    ax2.step(t, 100 * np.array(series["mem_utilisation"]), where="post", label="memory")
    locality = np.array([np.nan if v is None else v for v in series["locality"]], dtype=np.float64)
    ax2.step(t, 100 * locality, where="post", label="locality (running)", linestyle=":")
    ax2.set_ylabel("% of cluster")
    ax2.set_ylim(0, 105)
    axes[-1].set_xlabel(f"time ({report.get('time_unit', 's')})")
    ax2.legend(loc="lower right", fontsize=8)
    if hosts:
        ax3 = axes[2]
        ax3.step(t, series["hosts_used"], where="post", color="tab:green", label="hosts in use")
        ax3.set_ylabel("hosts")
        moved = np.flatnonzero(np.array(series.get("moves", []), dtype=np.int64) > 0)
        if moved.size:
            ax3.plot(t[moved], np.array(series["hosts_used"])[moved], "v", color="tab:purple",
                     markersize=4, label=f"rebalanced ({int(np.sum(series['moves']))} moves)")
        ax3.legend(loc="lower right", fontsize=8)
    ax1.set_title(title or "Trace replay: pending and utilisation over time", fontsize=10)
    _save(fig, path)
    return str(path)


def rebalance_plot(reports: dict, path="rebalance.png", *, title: str | None = None) -> str:
    """Write hosts in use, pending requests and moves made so far over time for several replays
    of one trace (``{label: report}``, reports of ``numasched.io.trace.replay``); returns
    ``path``."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True, layout="constrained")
    for label, report in reports.items():
        series = report["series"]
        t = np.array(series["time"], dtype=np.float64)
        s = report["summary"]
        axes[0].step(t, series["hosts_used"], where="post",
                     label=f"{label} (mean {s['mean_hosts_used']:.1f})")
        axes[1].step(t, series["pending"], where="post",
                     label=f"{label} (mean {s['mean_pending']:.1f})")
        axes[2].step(t, np.cumsum(series["moves"]), where="post",
                     label=f"{label} ({s['moves_per_hour']:.0f} per hour)")
    for ax, ylabel in zip(axes, ("hosts in use", "pending requests", "moves so far")):
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title or "Rebalancing on churn: hosts in use, pending, moves", fontsize=10)
    _save(fig, path)
    return str(path)


__all__ = ["occupancy_heatmap", "replay_plot", "rebalance_plot", "occupancy"]
