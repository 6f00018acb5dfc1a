"""Inputs that count their own deserialisations, for the sweep's "sent once" test.

Uploaded to the Dask workers (``client.upload_file``), so a worker that unpickles one of these
objects increments its own ``COUNTS[token]``; ``count(token)`` reads it back through
``client.run``.
"""
from __future__ import annotations

import numpy as np

from numasched import Cluster, Requests

COUNTS: dict[str, int] = {}


def count(token: str) -> int:
    return COUNTS.get(token, 0)


def _rebuild(cls, token, *arrays):
    COUNTS[token] = COUNTS.get(token, 0) + 1
    return cls(token, *arrays)


class _Counting:
    """Pickles as (class, token, arrays); unpickling counts one arrival of ``token``."""

    FIELDS: tuple[str, ...] = ()

    def __init__(self, token: str, *arrays):
        super().__init__(*arrays)
        self.token = token

    def __reduce__(self):
        return _rebuild, (type(self), self.token, *(np.asarray(getattr(self, f)) for f in self.FIELDS))


class CountingRequests(_Counting, Requests):
    FIELDS = ("cpu", "mem")


class CountingCluster(_Counting, Cluster):
    FIELDS = ("node_cpu", "node_mem")
