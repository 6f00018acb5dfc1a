"""Improving a placement: ``refine.py`` (local search behind ``place(..., refine=S)``),
``rebalance.py`` (migration plans for a running placement) and ``plan.py`` (capacity planning)."""
