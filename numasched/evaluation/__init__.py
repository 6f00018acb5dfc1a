"""The evaluation side: how good a placement is and how to show it.

- ``metrics.py``: ``Placement.summary()`` (hosts used against a lower bound, locality, stranded
  capacity);
- ``locality.py``: the local-access fraction and the throughput model built on it;
- ``workloads.py``: the built-in request mixes (the Azure 2017 VM sizes, containers);
- ``datasets.py``: public bin-packing instances and packing quality against their optima;
- ``demo.py`` and ``pacific.py``: the ``numasched demo`` and ``numasched pacific`` reports.
"""
