"""Improving a placement after the greedy pass: ``refine.py`` (local search behind
``place(..., refine=S)``)."""
