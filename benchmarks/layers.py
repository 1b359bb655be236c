"""Layer benchmark: every family's KA conv beside plain-conv baselines. See ``--help``.

Example:
    python benchmarks/layers.py --device cuda --markdown reports/layers-cuda.md
"""

from kanconvs.cli.bench_cmd import script_main

if __name__ == "__main__":
    raise SystemExit(script_main("layers", "benchmarks/layers.py"))
