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


def _seen(token: str) -> None:
    COUNTS[token] = COUNTS.get(token, 0) + 1


def _requests(token, cpu, mem):
    _seen(token)
    return CountingRequests(token, cpu, mem)


def _cluster(token, node_cpu, node_mem):
    _seen(token)
    return CountingCluster(token, node_cpu, node_mem)


class CountingRequests(Requests):
    def __init__(self, token: str, cpu, mem):
        super().__init__(cpu, mem)
        self.token = token

    def __reduce__(self):
        return _requests, (self.token, np.asarray(self.cpu), np.asarray(self.mem))


class CountingCluster(Cluster):
    def __init__(self, token: str, node_cpu, node_mem):
        super().__init__(node_cpu, node_mem)
        self.token = token

    def __reduce__(self):
        return _cluster, (self.token, np.asarray(self.node_cpu), np.asarray(self.node_mem))
