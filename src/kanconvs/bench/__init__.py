"""Benchmark runners. They print ratios measured side by side in one run; they are never timed unit tests.

- :mod:`kanconvs.bench.layers`: train-step time and memory of every family's conv layer against plain convs
  (``kanconvs bench-layers`` or ``python benchmarks/layers.py``).
- :mod:`kanconvs.bench.models`: training/inference throughput and memory of registered models beside their
  plain-conv twins (``kanconvs bench-models`` or ``python benchmarks/models.py``).
- :mod:`kanconvs.bench.table`: the seed documents' comparison table, trained cell by cell (``kanconvs bench``).
"""
