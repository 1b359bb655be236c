"""Benchmark runners. They print ratios measured side by side in one run; they are never timed unit tests.

- :mod:`kanconvs.bench.layers`: train-step time and memory of every family's conv layer against plain convs
  (``kanconvs bench layers`` or ``python benchmarks/layers.py``).
- :mod:`kanconvs.bench.models`: training/inference throughput and memory of registered models beside their
  plain-conv twins (``kanconvs bench models`` or ``python benchmarks/models.py``).
- :mod:`kanconvs.bench.table`: the seed documents' comparison table, trained cell by cell (``kanconvs bench`` or
  ``kanconvs bench table``).
- :mod:`kanconvs.bench.vs_reference`: layers and seed networks beside torch-conv-kan (``kanconvs bench vs-reference``
  or ``python benchmarks/vs_reference.py``).

Each timing module offers the same functions (``add_arguments``, ``resolve_config``, ``run_benchmark``,
``format_table``, ``format_markdown``, ``failed``); :func:`kanconvs.cli.bench_cmd.run_timing` runs any of them, and
progress goes to the ``kanconvs.bench`` logger.
"""
