"""Shared fixtures for the numasched benchmarks (pytest-benchmark).

Run from the repository root:

    python -m pytest benchmarks --benchmark-only --benchmark-group-by=group

``python -m pytest tests`` never collects this directory (``testpaths = ["tests"]``).
Derived figures (speedups, placements/s) are stored in each benchmark's ``extra_info`` (so they
land in ``--benchmark-json`` / ``--benchmark-autosave`` files) and printed at the end of the run.
"""
from __future__ import annotations

import pytest

import numasched

_FIGURES: list[str] = []


@pytest.fixture
def cython_backend() -> str:
    """'cython', or skip the benchmark when the extension is not built here."""
    if "cython" not in numasched.available_backends():
        pytest.skip("the Cython backend (numasched._core) is not built; "
                    'build it with `pip install -e ".[dev]"`')
    return "cython"


@pytest.fixture(scope="session")
def figures():
    """Append a line to the "numasched figures" summary printed after the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _FIGURES:
        terminalreporter.section("numasched figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
