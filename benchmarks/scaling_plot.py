"""The scaling curves: measured rows in a JSON file, drawn as a log-log plot.

``test_scaling.py`` measures placements/s at 1k, 10k, 100k (and 1M) requests with hosts =
requests / 10 and merges its rows into ``OUT/scaling.json`` (a newer measurement of the same
backend, kernel, policy and size replaces the older one; the first run starts from the rows of
``results/scaling.json``, the run the documentation quotes). ``write_all()`` then writes to
``OUT``:

- ``scaling.csv``  one row per (backend, kernel, policy, requests);
- ``scaling.svg`` and ``scaling.png``, log-log placements/s against requests, one line per
  backend and policy, DESIGN.md's target dashed.

``OUT`` is ``benchmarks/out/`` (git-ignored) unless ``NUMASCHED_BENCH_OUT`` names another folder,
so a run never changes the checkout. To redraw without measuring::

    python benchmarks/scaling_plot.py                          # results/scaling.json -> out/
    python benchmarks/scaling_plot.py --json FILE --out DIR
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"                        # the quoted run (kept in git, read only here)
OUT = Path(os.environ.get("NUMASCHED_BENCH_OUT") or HERE / "out")
JSON_PATH = OUT / "scaling.json"
FIELDS = ("backend", "kernel", "policy", "numa", "requests", "hosts", "seconds", "rounds",
          "placements_per_s", "timer", "hosts_used", "commit", "date")
TARGET_PER_S = 1_000_000  # DESIGN.md: best-fit + restricted at 100,000 requests / 10,000 hosts


def _key(row: dict) -> tuple:
    return row["backend"], row.get("kernel", ""), row["policy"], row["numa"], row["requests"]


def load(path: Path = JSON_PATH) -> list[dict]:
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    for row in rows:
        row.setdefault("kernel", "")
    return rows


def merge(rows: list[dict], path: Path = JSON_PATH) -> list[dict]:
    """Rows already in ``path`` (else in ``results/scaling.json``) plus ``rows`` (a new row
    replaces an old one of the same key), written to ``path``."""
    by_key = {_key(r): r for r in load(path if path.exists() else RESULTS / "scaling.json")}
    by_key.update({_key(r): r for r in rows})
    merged = sorted(by_key.values(), key=_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": merged}, indent=1) + "\n")
    return merged


def write_csv(rows: list[dict], path: Path = OUT / "scaling.csv") -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], stem: Path = OUT / "scaling") -> list[Path]:
    """Log-log placements/s against requests; returns the files written (none without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        print('matplotlib is not installed (pip install -e ".[bench]"): no scaling plot',
              file=sys.stderr)
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "numasched"  # stable element ids: same numbers, same SVG

    fig, ax = plt.subplots(figsize=(10, 5))
    lines: dict[tuple, list[dict]] = {}
    for row in rows:
        lines.setdefault((row["backend"], row.get("kernel", ""), row["policy"], row["numa"]),
                         []).append(row)
    colours = {"cython": "tab:blue", "numba": "tab:green", "numpy-scan": "tab:grey"}
    dashes = {"best-fit": "-", "first-fit": "--"}
    markers = {"best-fit": "o", "first-fit": "s"}
    for (backend, kernel, policy, numa), points in sorted(lines.items()):
        points.sort(key=lambda r: r["requests"])
        name = f"{backend} ({kernel})" if kernel else backend
        ax.plot([p["requests"] for p in points], [p["placements_per_s"] for p in points],
                color=colours.get(backend), linestyle=dashes.get(policy, ":"),
                marker=markers.get(policy, "^"), alpha=0.45 if kernel else 1.0,
                label=f"{name}, {policy} + {numa}")
    ax.axhline(TARGET_PER_S, color="tab:red", linestyle=":", linewidth=1)
    ax.annotate("target: best-fit + restricted, 100k requests", (100_000, TARGET_PER_S),
                textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8, color="tab:red")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests (hosts = requests / 10)")
    ax.set_ylabel("placements/s")
    timers = sorted({r.get("timer") or "perf_counter" for r in rows})
    ax.set_title(f"numasched placement throughput ({' / '.join(timers)} clock; "
                 f"commits in scaling.csv)", fontsize=10)
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    written = []
    for suffix in (".svg", ".png"):
        # No date in the SVG either.
        fig.savefig(stem.with_suffix(suffix), dpi=120,
                    metadata={"Date": None} if suffix == ".svg" else None)
        written.append(stem.with_suffix(suffix))
    plt.close(fig)
    return written


def write_all(rows: list[dict], out: Path = OUT) -> list[Path]:
    """The CSV and both plots of ``rows`` in the folder ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "scaling.csv")
    return [out / "scaling.csv", *plot(rows, out / "scaling")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Redraw the scaling plot from measured rows.")
    parser.add_argument("--json", type=Path, default=RESULTS / "scaling.json",
                        help="rows to draw (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="folder for scaling.csv, .svg and .png (default: %(default)s)")
    args = parser.parse_args(argv)
    rows = load(args.json)
    if not rows:
        print(f"no measurements in {args.json}: run python -m pytest benchmarks/test_scaling.py "
              f"--benchmark-only first", file=sys.stderr)
        return 1
    for path in write_all(rows, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
