"""Loaders for public bin-packing benchmark files, and packing quality against their optima.

Formats (the data lives outside the package; every loader takes a path, nothing is bundled):

- BPPLIB one-dimensional files (``load_bpp``): line 1 the item count n, line 2 the bin capacity C,
  then n lines of one positive integer weight each. CRLF or LF line ends; blank lines are ignored.
- VPSolver ``.vbp`` vector-packing files (``load_vbp``): line 1 the dimension d, line 2 the d bin
  capacities, line 3 the number m of item types, then m lines ``w1 .. wd demand``: demand copies
  of an item of weights (w1, .., wd). The instance holds the items expanded by their demand.
- ``optima.tsv`` (``bpp_optima``): ``name  lower_bound  best_known`` with a header line.
- ``ct01_optima.csv`` (``ct01_optima``): ``dimension;class;items;instance_number;LB;UB;
  best_known_LB;best_known_UB`` with a header line; row (class c, items n, instance i) is the file
  ``CL_{c}_{n}_{i}.vbp`` (class 10 has 24, 51, 99 and 201 items, so its files are ``CL_10_24_*``
  and so on: the item count in the name is the csv's ``items`` field, never rounded).

Malformed input raises ``ValueError`` naming the file and the line.

``as_placement_problem`` turns an instance into a numasched placement problem: one host per item
(an upper bound on the bins needed), one NUMA node per host, so hosts used = bins used.
``packing_quality`` runs policies over a whole benchmark set and compares with the optima; the
benchmark ``benchmarks/test_quality.py`` and scripts call it.

``default_data_dir()`` finds the shared data folder: ``$NUMASCHED_DATA`` when set, otherwise
``../shared/data`` next to the repository root (a source checkout), or None when absent.
"""
from __future__ import annotations

import csv
import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..api import Cluster, Requests, place

#: The benchmark sets of ``../shared/data``: folder, file pattern and kind ("bpp" or "vbp").
SETS = {
    "falkenauer_u": ("bpp1d/falkenauer_u", "*.txt", "bpp"),
    "scholl_1": ("bpp1d/scholl_1", "*.txt", "bpp"),
    "ct01": ("vbp2d/ct01", "*.vbp", "vbp"),
}
BPP_OPTIMA = "bpp1d/optima.tsv"
CT01_OPTIMA = "vbp2d/ct01_optima.csv"

#: The policies the quality benchmark compares (host scores alone, plus the binpack and
#: vector-pack presets; vector-pack fixes its own order, ``fill``).
QUALITY_POLICIES = ("first-fit", "best-fit", "worst-fit", "balanced", "dot-product", "binpack",
                    "vector-pack")

_MAX_AMOUNT = 1 << 44  # numasched's per-node capacity limit (codes.MAX_NODE_AMOUNT)


# ----------------------------------------------------------------------------------------------
# Instances
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BinPackingInstance:
    """One-dimensional bin packing: ``sizes`` (int64 ``[n]``) into bins of ``capacity``."""

    name: str
    capacity: int
    sizes: np.ndarray
    path: Path | None = None

    @property
    def n(self) -> int:
        return int(self.sizes.shape[0])

    def __repr__(self) -> str:
        return f"BinPackingInstance({self.name!r}, n={self.n}, capacity={self.capacity})"


@dataclass(frozen=True, eq=False)
class VectorPackingInstance:
    """A d-dimensional vector-packing instance: ``sizes`` (int64 ``[n, d]``, items expanded by
    their demand, in file order) into bins of ``capacities`` (int64 ``[d]``)."""

    name: str
    capacities: np.ndarray
    sizes: np.ndarray
    path: Path | None = None

    @property
    def n(self) -> int:
        return int(self.sizes.shape[0])

    @property
    def d(self) -> int:
        return int(self.capacities.shape[0])

    def __repr__(self) -> str:
        return (f"VectorPackingInstance({self.name!r}, n={self.n}, "
                f"capacities={self.capacities.tolist()})")


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


class _Lines:
    """Non-blank lines of a text file with their 1-based line numbers, for error messages."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: not a UTF-8 text file ({exc})") from None
        # splitlines() handles CRLF, LF and CR line ends alike.
        self.lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)
                      if line.strip()]
        self.pos = 0

    def error(self, lineno: int | None, message: str) -> ValueError:
        where = f"{self.path}, line {lineno}" if lineno is not None else str(self.path)
        return ValueError(f"{where}: {message}")

    def next(self, what: str) -> tuple[int, str]:
        if self.pos >= len(self.lines):
            last = self.lines[-1][0] if self.lines else None
            raise self.error(last, f"unexpected end of file: expected {what}")
        item = self.lines[self.pos]
        self.pos += 1
        return item

    def ints(self, what: str, count: int | None = None, *, lo: int = 0) -> tuple[int, list[int]]:
        lineno, line = self.next(what)
        fields = line.split()
        if count is not None and len(fields) != count:
            raise self.error(lineno, f"expected {what} ({count} integer{'s' * (count != 1)}), "
                                     f"got {line!r}")
        values = []
        for f in fields:
            try:
                v = int(f)
            except ValueError:
                raise self.error(lineno, f"expected {what} as integers, got {line!r}") from None
            if v < lo or v > _MAX_AMOUNT:
                raise self.error(lineno, f"{what} must be integers in {lo}..{_MAX_AMOUNT}, "
                                         f"got {v}")
            values.append(v)
        return lineno, values

    def rest(self) -> list[tuple[int, str]]:
        out = self.lines[self.pos:]
        self.pos = len(self.lines)
        return out


def load_bpp(path) -> BinPackingInstance:
    """Read a BPPLIB one-dimensional instance (n, capacity, then one weight per line).

    Every weight must be a positive integer no larger than the capacity; the file must hold
    exactly n weights. The name is the file name without its extension.
    """
    src = _Lines(path)
    _, (n,) = src.ints("the item count n", 1)
    _, (capacity,) = src.ints("the bin capacity", 1, lo=1)
    sizes = np.empty(n, dtype=np.int64)
    rows = src.rest()
    if len(rows) < n:
        last = rows[-1][0] if rows else None
        raise src.error(last, f"the file declares {n} items but holds {len(rows)} weights")
    if len(rows) > n:
        raise src.error(rows[n][0], f"the file declares {n} items but holds more weights "
                                    f"({len(rows)})")
    for i, (lineno, line) in enumerate(rows):
        fields = line.split()
        try:
            if len(fields) != 1:
                raise ValueError
            w = int(fields[0])
        except ValueError:
            raise src.error(lineno, f"expected one integer item weight, got {line!r}") from None
        if not 1 <= w <= capacity:
            raise src.error(lineno, f"item weight {w} is outside 1..{capacity} (the capacity)")
        sizes[i] = w
    return BinPackingInstance(src.path.stem, int(capacity), _readonly(sizes), src.path)


def load_vbp(path) -> VectorPackingInstance:
    """Read a VPSolver ``.vbp`` instance (d, capacities, item-type count, ``w1 .. wd demand``).

    Weights are non-negative integers no larger than the capacity of their dimension (and not
    all zero), demands non-negative integers; items are expanded by their demand in file order.
    """
    src = _Lines(path)
    _, (d,) = src.ints("the dimension d", 1, lo=1)
    _, caps = src.ints(f"the {d} bin capacities", d, lo=1)
    _, (m,) = src.ints("the number of item types", 1)
    weights = np.zeros((m, d), dtype=np.int64)
    demand = np.zeros(m, dtype=np.int64)
    for t in range(m):
        lineno, values = src.ints(f"item type {t + 1} of {m} (w1 .. w{d} demand)", d + 1)
        w, q = values[:d], values[d]
        for k, (wk, ck) in enumerate(zip(w, caps)):
            if wk > ck:
                raise src.error(lineno, f"weight w{k + 1} = {wk} exceeds the capacity {ck}")
        if not any(w):
            raise src.error(lineno, "an item type with every weight 0")
        weights[t], demand[t] = w, q
    extra = src.rest()
    if extra:
        raise src.error(extra[0][0], f"the file declares {m} item types but has more lines: "
                                     f"{extra[0][1]!r}")
    sizes = np.repeat(weights, demand, axis=0)
    return VectorPackingInstance(src.path.stem, _readonly(np.asarray(caps, dtype=np.int64)),
                                 _readonly(np.ascontiguousarray(sizes)), src.path)


def load(path):
    """``load_vbp`` for ``.vbp`` files, ``load_bpp`` otherwise."""
    return load_vbp(path) if Path(path).suffix.lower() == ".vbp" else load_bpp(path)


# ----------------------------------------------------------------------------------------------
# Optima
# ----------------------------------------------------------------------------------------------
def _int_field(path: Path, lineno: int, row: dict, key: str) -> int:
    value = row.get(key)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"{path}, line {lineno}: {key} must be an integer, "
                         f"got {value!r}") from None


def bpp_optima(path) -> dict[str, int]:
    """``optima.tsv`` as ``{instance name: best known number of bins}``.

    Where ``lower_bound`` equals ``best_known`` the value is the proven optimum (all 800 rows of
    the shared file); a lower bound above the best known solution is an error.
    """
    path = Path(path)
    out: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = {"name", "lower_bound", "best_known"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}, line 1: missing column(s) {sorted(missing)}; "
                             f"header is {reader.fieldnames}")
        for lineno, row in enumerate(reader, start=2):
            name = (row.get("name") or "").strip()
            if not name:
                raise ValueError(f"{path}, line {lineno}: empty instance name")
            lb = _int_field(path, lineno, row, "lower_bound")
            best = _int_field(path, lineno, row, "best_known")
            if not 1 <= lb <= best:
                raise ValueError(f"{path}, line {lineno}: need 1 <= lower_bound <= best_known, "
                                 f"got {lb} and {best}")
            if name in out:
                raise ValueError(f"{path}, line {lineno}: instance {name!r} listed twice")
            out[name] = best
    return out


def ct01_name(klass: int, items: int, instance: int) -> str:
    """The CT01 file stem of a ``ct01_optima.csv`` row: ``CL_{class}_{items}_{instance}``."""
    return f"CL_{int(klass)}_{int(items)}_{int(instance)}"


def ct01_optima(path) -> dict[str, int]:
    """``ct01_optima.csv`` as ``{file stem (see ct01_name): best known number of bins}``.

    The value is ``best_known_UB`` (the best known solution); rows whose ``best_known_LB`` is
    lower are open instances (none in the shared file). Only 2-dimensional rows are kept.
    """
    path = Path(path)
    out: dict[str, int] = {}
    cols = ("dimension", "class", "items", "instance_number", "best_known_LB", "best_known_UB")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        missing = set(cols) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}, line 1: missing column(s) {sorted(missing)}; "
                             f"header is {reader.fieldnames}")
        for lineno, row in enumerate(reader, start=2):
            dim, klass, items, inst, lb, ub = (_int_field(path, lineno, row, c) for c in cols)
            if not 1 <= lb <= ub:
                raise ValueError(f"{path}, line {lineno}: need 1 <= best_known_LB <= "
                                 f"best_known_UB, got {lb} and {ub}")
            if dim != 2:
                continue
            name = ct01_name(klass, items, inst)
            if name in out:
                raise ValueError(f"{path}, line {lineno}: instance {name!r} listed twice")
            out[name] = ub
    return out


def default_data_dir() -> Path | None:
    """``$NUMASCHED_DATA`` if set, else ``../shared/data`` beside the repository root; None when
    the folder does not exist (e.g. an installed package, or a checkout without the data)."""
    env = os.environ.get("NUMASCHED_DATA")
    if env:
        candidate = Path(env).expanduser()
    else:
        repo_root = Path(__file__).resolve().parents[2]   # numasched/evaluation/datasets.py
        candidate = repo_root.parent / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


def set_files(name: str, data_dir) -> list[Path]:
    """The instance files of benchmark set ``name`` (a key of ``SETS``), sorted by name."""
    if name not in SETS:
        raise ValueError(f"unknown benchmark set {name!r}; known: {', '.join(map(repr, SETS))}")
    folder, pattern, _ = SETS[name]
    root = Path(data_dir) / folder
    if not root.is_dir():
        raise ValueError(f"benchmark set {name!r}: folder {root} does not exist")
    return sorted(root.glob(pattern))


def set_optima(name: str, data_dir) -> dict[str, int]:
    """The optima of benchmark set ``name`` keyed by file stem."""
    if name not in SETS:
        raise ValueError(f"unknown benchmark set {name!r}; known: {', '.join(map(repr, SETS))}")
    if SETS[name][2] == "vbp":
        return ct01_optima(Path(data_dir) / CT01_OPTIMA)
    return bpp_optima(Path(data_dir) / BPP_OPTIMA)


# ----------------------------------------------------------------------------------------------
# As a numasched placement problem
# ----------------------------------------------------------------------------------------------
def as_placement_problem(instance) -> tuple[Cluster, Requests]:
    """``(Cluster, Requests)`` whose hosts used equal the bins used by the placement.

    One host per item (enough for any packing), one NUMA node per host (K = 1).

    - 1-D: cpu = item size, mem = 1; host cpu = capacity, host mem = n (never binding).
    - 2-D: cpu = w1, mem = w2; host capacities (c1, c2). A 1-D ``.vbp`` is treated as above.
      numasched amounts must be positive: when some weight is 0, every amount a of that
      dimension becomes a·(n+1) + 1 and its capacity C·(n+1) + n, which keeps exactly the same
      feasible packings (a bin holds at most n items, so the added units never cross a
      multiple of n+1).

    Instances of more than 2 dimensions are refused (a host has two resources).
    """
    if isinstance(instance, BinPackingInstance):
        n = instance.n
        cluster = Cluster(np.full((n, 1), instance.capacity, dtype=np.int64),
                          np.full((n, 1), max(n, 1), dtype=np.int64))
        return cluster, Requests(instance.sizes, np.ones(n, dtype=np.int64))
    if not isinstance(instance, VectorPackingInstance):
        raise ValueError(f"instance must be a BinPackingInstance or a VectorPackingInstance, "
                         f"got {type(instance).__name__}")
    n, d = instance.n, instance.d
    if d == 1:
        sizes = instance.sizes[:, 0]
        return as_placement_problem(BinPackingInstance(instance.name, int(instance.capacities[0]),
                                                       sizes, instance.path))
    if d != 2:
        raise ValueError(f"instance {instance.name!r} has {d} dimensions; a numasched host has "
                         f"two resources (cpu, mem), so only 1 and 2 are supported")
    amounts, caps = [], []
    for k in range(2):
        a, c = instance.sizes[:, k].astype(np.int64), int(instance.capacities[k])
        if n and a.min() == 0:
            a, c = a * (n + 1) + 1, c * (n + 1) + n
        amounts.append(a)
        caps.append(c)
    cluster = Cluster(np.full((n, 1), caps[0], dtype=np.int64),
                      np.full((n, 1), caps[1], dtype=np.int64))
    return cluster, Requests(amounts[0], amounts[1])


# ----------------------------------------------------------------------------------------------
# Packing quality
# ----------------------------------------------------------------------------------------------
def refine_supported() -> bool:
    """Whether ``place()`` takes a ``refine`` (seconds) argument in this version."""
    return "refine" in inspect.signature(place).parameters


def _place_kwargs(refine: float | None) -> dict:
    if refine is None:
        return {}
    params = inspect.signature(place).parameters
    if "refine" not in params:
        raise ValueError("this numasched's place() has no refine argument")
    kwargs = {"refine": refine}
    if "seed" in params:
        kwargs["seed"] = 0
    return kwargs


def sample_files(files: list[Path], every: int | None) -> list[Path]:
    """Every ``every``-th file (deterministic; all files when ``every`` is None or 1)."""
    if every is None or every <= 1:
        return list(files)
    return list(files[::every])


@dataclass
class SetQuality:
    """Packing quality of one policy (and refinement budget) over one benchmark set."""

    set_name: str
    policy: str
    refine: float | None
    every: int | None = None
    instances: int = 0
    bins: int = 0
    optimum: int = 0
    at_optimum: int = 0
    unplaced: int = 0
    seconds: float = 0.0
    per_instance: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The set's name, with the subsample when one was taken (``scholl_1 1/6``)."""
        if not self.every or self.every <= 1:
            return self.set_name
        return f"{self.set_name} 1/{self.every}"

    @property
    def gap(self) -> float:
        """Total bins over total optimum, minus 1 (0.013 = 1.3 % more bins than optimal)."""
        return self.bins / self.optimum - 1.0 if self.optimum else float("nan")

    def as_dict(self) -> dict:
        return {"set": self.label, "policy": self.policy, "refine": self.refine,
                "every": self.every,
                "instances": self.instances, "bins": self.bins, "optimum": self.optimum,
                "gap": self.gap, "at_optimum": self.at_optimum, "unplaced": self.unplaced,
                "seconds": self.seconds}


def instance_bins(instance, policy, *, refine: float | None = None,
                  backend: str = "auto") -> tuple[int, int]:
    """(hosts used, requests left pending) when ``policy`` places ``instance`` in decreasing
    order, unless the policy fixes its own (``vector-pack``: ``fill``), plus refinement of
    ``refine`` seconds when given."""
    cluster, requests = as_placement_problem(instance)
    placement = place(cluster, requests, policy=policy, order="decreasing", backend=backend,
                      **_place_kwargs(refine))
    summary = placement.summary()
    return int(summary["hosts_used"]), int(summary["pending"])


def packing_quality(set_name: str, policies=QUALITY_POLICIES, *, data_dir=None,
                    refine: float | None = None, every: int | None = None,
                    backend: str = "auto", instances=None) -> list[SetQuality]:
    """Run each policy over benchmark set ``set_name`` and compare the bins with the optima.

    ``data_dir`` defaults to ``default_data_dir()``; ``every`` keeps every ``every``-th file
    (a deterministic subsample; ``instances`` given with ``every`` are taken as that subsample);
    ``refine`` is the refinement budget in seconds per instance
    (None: no refinement). ``instances`` may pass already loaded ``[(instance, optimum)]`` pairs
    to skip reading the files again. Returns one ``SetQuality`` per policy.
    """
    if instances is None:
        instances = load_set(set_name, data_dir, every=every)
    out = []
    for policy in policies:
        q = SetQuality(set_name, policy if isinstance(policy, str) else policy.name, refine, every)
        start = time.perf_counter()
        for inst, opt in instances:
            bins, pending = instance_bins(inst, policy, refine=refine, backend=backend)
            q.instances += 1
            q.bins += bins
            q.optimum += opt
            q.at_optimum += int(bins == opt and pending == 0)
            q.unplaced += pending
            q.per_instance[inst.name] = bins
        q.seconds = time.perf_counter() - start
        out.append(q)
    return out


def load_set(set_name: str, data_dir=None, *, every: int | None = None) -> list[tuple]:
    """``[(instance, optimum)]`` for the files of a benchmark set (optionally subsampled)."""
    data_dir = default_data_dir() if data_dir is None else Path(data_dir)
    if data_dir is None:
        raise ValueError("no benchmark data folder: set NUMASCHED_DATA or pass data_dir")
    optima = set_optima(set_name, data_dir)
    kind = SETS[set_name][2]
    loader = load_vbp if kind == "vbp" else load_bpp
    pairs = []
    for path in sample_files(set_files(set_name, data_dir), every):
        inst = loader(path)
        if inst.name not in optima:
            raise ValueError(f"{path}: no optimum for {inst.name!r} in the optima table")
        pairs.append((inst, optima[inst.name]))
    if not pairs:
        raise ValueError(f"benchmark set {set_name!r}: no instance files in {data_dir}")
    return pairs


def quality_table(results: list[SetQuality]) -> list[dict]:
    """Rows ``{set, policy, instances, gap (plain), gap (refined), at optimum ...}``: one per
    (set, policy), joining the runs without and with refinement."""
    rows: dict[tuple, dict] = {}
    for q in results:
        row = rows.setdefault((q.label, q.policy), {
            "set": q.label, "policy": q.policy, "instances": q.instances,
            "optimum": q.optimum, "bins": None, "gap": None, "at_optimum": None,
            "seconds": None, "refine": None, "bins_refined": None, "gap_refined": None,
            "at_optimum_refined": None, "instances_refined": None, "seconds_refined": None})
        if q.refine is None:
            row.update(bins=q.bins, gap=q.gap, at_optimum=q.at_optimum, seconds=q.seconds,
                       instances=q.instances, optimum=q.optimum)
        else:
            row.update(refine=q.refine, bins_refined=q.bins, gap_refined=q.gap,
                       at_optimum_refined=q.at_optimum, instances_refined=q.instances,
                       seconds_refined=q.seconds, optimum_refined=q.optimum)
    return list(rows.values())


def format_quality_table(rows: list[dict]) -> str:
    """A plain-text table of ``quality_table`` rows (fits in 100 columns)."""
    def pct(x):
        return "-" if x is None else f"{100 * x:+.2f}%"

    def frac(a, b):
        return "-" if a is None else f"{a}/{b}"

    head = (f"{'set':<17} {'policy':<12} {'n':>4} {'optimum':>8} {'bins':>7} {'over':>8} "
            f"{'at opt':>8} {'refined':>8} {'over':>8} {'at opt':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['set']:<17} {r['policy']:<12} {r['instances']:>4} {r['optimum']:>8} "
            f"{'-' if r['bins'] is None else r['bins']:>7} {pct(r['gap']):>8} "
            f"{frac(r['at_optimum'], r['instances']):>8} "
            f"{'-' if r['bins_refined'] is None else r['bins_refined']:>8} "
            f"{pct(r['gap_refined']):>8} "
            f"{frac(r['at_optimum_refined'], r['instances_refined']):>8}")
    return "\n".join(lines)


#: Refinement budget (seconds per instance) and Scholl subsample of ``run_quality``'s refined
#: runs: 7 policies x (80 + 120 + 200) instances x 0.1 s is at most 5 minutes.
DEFAULT_REFINE_BUDGET = 0.1
DEFAULT_REFINE_SCHOLL_EVERY = 6


def run_quality(sets=tuple(SETS), policies=QUALITY_POLICIES, *, data_dir=None,
                refine: float | None = None, scholl_every: int = DEFAULT_REFINE_SCHOLL_EVERY,
                backend: str = "auto", progress=None) -> list[SetQuality]:
    """The quality benchmark as a function: every policy over every set without refinement; with
    ``refine`` seconds per instance too (when ``place()`` supports it), Scholl 1 then subsampled
    to every ``scholl_every``-th file and run without refinement on that subsample as well, so
    the two columns compare the same instances. ``progress`` is called with each result."""
    out = []
    for name in sets:
        runs = [(None, None)]
        if refine is not None:
            every = scholl_every if name == "scholl_1" else None
            if every:
                runs.append((None, every))
            runs.append((refine, every))
        loaded = {}
        for budget, every in runs:
            if every not in loaded:
                loaded[every] = load_set(name, data_dir, every=every)
            for q in packing_quality(name, policies, refine=budget, every=every,
                                     backend=backend, instances=loaded[every]):
                out.append(q)
                if progress is not None:
                    progress(q)
    return out


def main(argv=None) -> int:
    """``python -m numasched.evaluation.datasets [--refine SECONDS] [--data DIR] [--set NAME ...]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m numasched.evaluation.datasets",
                                     description="Packing quality against known optima.")
    parser.add_argument("--data", type=Path, default=None, help="data folder (../shared/data)")
    parser.add_argument("--set", dest="sets", action="append", choices=list(SETS),
                        help="benchmark set (repeatable; default all)")
    parser.add_argument("--policy", dest="policies", action="append",
                        help="policy (repeatable; default the seven of QUALITY_POLICIES)")
    parser.add_argument("--refine", type=float, default=None,
                        help="also run with this refinement budget in seconds per instance")
    parser.add_argument("--scholl-every", type=int, default=DEFAULT_REFINE_SCHOLL_EVERY,
                        help="Scholl 1 subsample of the refined runs (every n-th file)")
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    if data_dir is None:
        parser.error("no data folder: pass --data or set NUMASCHED_DATA")
    if args.refine is not None and not refine_supported():
        parser.error("this numasched's place() has no refine argument")

    def progress(q: SetQuality) -> None:
        tag = "" if q.refine is None else f" refine={q.refine:g}s"
        print(f"{q.label:<17} {q.policy:<12}{tag}: {100 * q.gap:+.2f}% "
              f"({q.at_optimum}/{q.instances} at optimum, {q.seconds:.1f} s)", flush=True)

    results = run_quality(args.sets or tuple(SETS), args.policies or QUALITY_POLICIES,
                          data_dir=data_dir, refine=args.refine, scholl_every=args.scholl_every,
                          progress=progress)
    print()
    print(format_quality_table(quality_table(results)))
    return 0


__all__ = ["BinPackingInstance", "VectorPackingInstance", "load_bpp", "load_vbp", "load",
           "bpp_optima", "ct01_optima", "ct01_name", "default_data_dir", "as_placement_problem",
           "set_files", "set_optima", "load_set", "packing_quality", "quality_table",
           "format_quality_table", "refine_supported", "instance_bins", "SETS",
           "QUALITY_POLICIES", "SetQuality", "run_quality", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
