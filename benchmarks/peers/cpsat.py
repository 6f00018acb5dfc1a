"""An exact two-dimensional vector bin packing model for OR-Tools CP-SAT.

Items have a CPU and a memory size; every bin (host) has the same CPU and memory capacity; the
objective is the number of bins used. This is numasched's placement problem with one NUMA node per
host (mode ``none``), so the host count numasched finds and the optimum CP-SAT proves are
comparable. Standard formulation with the usual symmetry breaking:

- ``x[i, b]`` = item i in bin b, only for ``b <= i`` (any packing can be relabelled so that bin b's
  first item has index >= b), ``y[b]`` = bin b used, ``y[b] >= y[b + 1]``;
- every item in exactly one bin; per bin and resource, the sum of sizes <= capacity * ``y[b]``;
- ``sum(y) >= ceil(total / capacity)`` for each resource (a redundant bound that helps the proof).

``solve`` records the wall time of every improving solution, so a caller can read when CP-SAT
first matched a given host count, and returns the final objective and the proven lower bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Result:
    status: str                      # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN, ...
    bins: int | None                 # best solution found (None: no solution in the time limit)
    bound: int                       # proven lower bound on the number of bins
    seconds: float                   # wall time of the whole solve (model building included)
    build_seconds: float             # of which building the model
    improvements: list[tuple[float, int]] = field(default_factory=list)  # (seconds, bins)

    def seconds_to_reach(self, bins: int) -> float | None:
        """Wall time (from the start of the solve) of the first solution with <= ``bins``."""
        for seconds, value in self.improvements:
            if value <= bins:
                return seconds
        return None


def solve(cpu, mem, cap_cpu: int, cap_mem: int, *, time_limit: float = 10.0, workers: int = 1,
          seed: int = 0, clock=time.perf_counter) -> Result:
    """Minimise the bins holding items ``(cpu[i], mem[i])``; every item must fit one bin.

    ``clock`` times the solve and its improvements (``time.process_time`` counts this process's
    CPU, steadier on a busy machine; CP-SAT's own ``time_limit`` is always wall time)."""
    from ortools.sat.python import cp_model

    cpu, mem = [int(c) for c in cpu], [int(m) for m in mem]
    n = len(cpu)
    if any(c > cap_cpu or m > cap_mem for c, m in zip(cpu, mem)):
        raise ValueError("every item must fit an empty bin")
    start = clock()
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{b}") for b in range(n)]
    x = [[model.new_bool_var(f"x{i}_{b}") for b in range(i + 1)] for i in range(n)]
    for i in range(n):
        model.add_exactly_one(x[i])
    for b in range(n):
        members = [(i, x[i][b]) for i in range(b, n)]
        model.add(sum(cpu[i] * v for i, v in members) <= cap_cpu * y[b])
        model.add(sum(mem[i] * v for i, v in members) <= cap_mem * y[b])
        if b + 1 < n:
            model.add(y[b] >= y[b + 1])
    lower = max(-(-sum(cpu) // cap_cpu), -(-sum(mem) // cap_mem), 1 if n else 0)
    model.add(sum(y) >= lower)
    model.minimize(sum(y))
    build_seconds = clock() - start

    improvements: list[tuple[float, int]] = []

    class Recorder(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self):
            improvements.append((clock() - start, int(round(self.objective_value))))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    status = solver.solve(model, Recorder())
    seconds = clock() - start
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return Result(status=solver.status_name(status),
                  bins=int(round(solver.objective_value)) if found else None,
                  bound=int(round(solver.best_objective_bound)) if found else lower,
                  seconds=seconds, build_seconds=build_seconds, improvements=improvements)
