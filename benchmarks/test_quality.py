"""Group "quality": packing quality against known optima on public benchmark sets.

Every policy of ``numasched.evaluation.datasets.QUALITY_POLICIES`` places every instance of Falkenauer U (80
files), Scholl 1 (720) and CT01 (200) in decreasing order (``vector-pack`` in its own order,
``fill``: hosts filled one at a time), one host (= one bin) per item, one NUMA node per host;
the figure is total hosts used over the total optimum, minus 1, per set, and
the number of instances solved to the optimum. Each (set, policy) run is timed once (pedantic,
one round) and stores its figures in ``extra_info``; the last test prints the whole table.

With refinement (``place(..., refine=SECONDS)``, when this numasched has it): every instance gets
``NUMASCHED_QUALITY_REFINE`` seconds (default 0.25; on these one-node instances refinement is the
consistent neighbourhood search of ``numasched.optimize._cns``, which stops early at the lower
bound, so most instances take far less). Scholl 1 is then run on a deterministic
subsample (every ``NUMASCHED_QUALITY_SCHOLL_EVERY``-th file, default 6: 120 files) both with and
without refinement, so that the columns compare the same instances; the full 720 files run without
refinement.

The data is read from ``$NUMASCHED_DATA`` or ``../shared/data``; without it every test skips.
The same computation from a script: ``python -m numasched.evaluation.datasets [--refine 0.1]``.
"""
from __future__ import annotations

import os

import pytest

from numasched.evaluation import datasets

REFINE = float(os.environ.get("NUMASCHED_QUALITY_REFINE", 0.25))
SCHOLL_EVERY = int(os.environ.get("NUMASCHED_QUALITY_SCHOLL_EVERY",
                                  datasets.DEFAULT_REFINE_SCHOLL_EVERY))

#: (set, subsample) pairs of the runs without refinement, and with refinement.
PLAIN_RUNS = [("falkenauer_u", None), ("scholl_1", None), ("ct01", None),
              ("scholl_1", SCHOLL_EVERY)]
REFINED_RUNS = [("falkenauer_u", None), ("scholl_1", SCHOLL_EVERY), ("ct01", None)]

#: DESIGN.md targets: best policy's bins over the optimum, without and with refinement.
TARGETS = {"falkenauer_u": (0.015, 0.005), "ct01": (0.03, 0.01)}
#: Share of instances at the optimum with refinement (the best policy), per set.
AT_OPTIMUM_TARGETS = {"falkenauer_u": 0.9}

_results: list[datasets.SetQuality] = []


@pytest.fixture(scope="module")
def data_dir():
    found = datasets.default_data_dir()
    if found is None:
        pytest.skip("benchmark data folder not found (set NUMASCHED_DATA or provide "
                    "../shared/data beside the repository)")
    return found


_loaded: dict = {}


def _instances(data_dir, name, every):
    key = (name, every)
    if key not in _loaded:
        _loaded[key] = datasets.load_set(name, data_dir, every=every)
    return _loaded[key]


def _run(benchmark, data_dir, name, every, policy, refine):
    instances = _instances(data_dir, name, every)
    (q,) = benchmark.pedantic(datasets.packing_quality, args=(name, [policy]),
                              kwargs={"refine": refine, "every": every, "instances": instances},
                              rounds=1, iterations=1, warmup_rounds=0)
    _results.append(q)
    benchmark.extra_info.update(q.as_dict())
    return q


def _ids(runs):
    return [name if not every else f"{name}-1of{every}" for name, every in runs]


@pytest.mark.benchmark(group="quality")
@pytest.mark.parametrize("policy", datasets.QUALITY_POLICIES)
@pytest.mark.parametrize("name,every", PLAIN_RUNS, ids=_ids(PLAIN_RUNS))
def test_quality(benchmark, data_dir, name, every, policy, figures):
    q = _run(benchmark, data_dir, name, every, policy, None)
    figures(f"quality {q.label:<17} {policy:<12} {100 * q.gap:+7.2f}% over the optimum, "
            f"{q.at_optimum}/{q.instances} at the optimum")


@pytest.mark.benchmark(group="quality-refined")
@pytest.mark.parametrize("policy", datasets.QUALITY_POLICIES)
@pytest.mark.parametrize("name,every", REFINED_RUNS, ids=_ids(REFINED_RUNS))
def test_quality_refined(benchmark, data_dir, name, every, policy, figures):
    if not datasets.refine_supported():
        pytest.skip("place() has no refine argument yet (numasched.optimize.refine not wired)")
    q = _run(benchmark, data_dir, name, every, policy, REFINE)
    figures(f"quality {q.label:<17} {policy:<12} {100 * q.gap:+7.2f}% over the optimum with "
            f"refine={REFINE:g}s, {q.at_optimum}/{q.instances} at the optimum")


@pytest.mark.benchmark(group="quality-table")
def test_quality_table(benchmark, data_dir, figures):
    """Print the joined table and the targets (after the runs above; figures only, no assert)."""
    if not _results:
        pytest.skip("no quality run in this session")
    rows = benchmark.pedantic(datasets.quality_table, args=(_results,), rounds=1, iterations=1)
    table = datasets.format_quality_table(rows)
    refined = "" if datasets.refine_supported() else " (refinement: not available in this build)"
    figures(f"packing quality, order=decreasing (vector-pack: fill), one host per item{refined}:")
    for line in table.splitlines():
        figures(line)
    for name, (plain_target, refined_target) in TARGETS.items():
        for key, target, label in (("gap", plain_target, "without"),
                                   ("gap_refined", refined_target, "with")):
            cands = [r for r in rows if r["set"] == name and r[key] is not None]
            if not cands:
                continue
            best = min(cands, key=lambda r: r[key])
            verdict = "met" if best[key] <= target else "NOT met"
            line = (f"target {name} {label} refinement: best {best['policy']} "
                    f"{100 * best[key]:+.2f}% vs {100 * target:.1f}%: {verdict}")
            figures(line)
            benchmark.extra_info[f"{name}_{key}_best"] = best[key]
            benchmark.extra_info[f"{name}_{key}_target_met"] = best[key] <= target
    for name, share in AT_OPTIMUM_TARGETS.items():
        refined = [q for q in _results if q.set_name == name and q.refine and not q.every]
        if not refined:
            continue
        best = max(refined, key=lambda q: q.at_optimum)
        verdict = "met" if best.at_optimum >= share * best.instances else "NOT met"
        figures(f"target {name} at the optimum with refinement: best {best.policy} "
                f"{best.at_optimum}/{best.instances} vs {100 * share:.0f}%: {verdict}")
        benchmark.extra_info[f"{name}_at_optimum_refined_best"] = best.at_optimum
    benchmark.extra_info["rows"] = rows
