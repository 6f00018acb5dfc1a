"""Peers the benchmarks compare numasched with: a NumPy full scan (exact for the cases it
supports), the ``binpacking`` package (one-dimensional) and OR-Tools CP-SAT (exact, small
instances). ``binpacking`` and ``ortools`` are optional (``pip install -e ".[bench]"``); the
benchmark that needs a missing one skips with a message."""
