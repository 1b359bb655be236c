"""Benchmark runners. They print ratios measured side by side in one run; they are never timed unit tests.

- :mod:`kanconvs.bench.layers`: train-step time and memory of every family's conv layer against plain convs
  (``kanconvs bench-layers`` or ``python benchmarks/layers.py``).
"""
