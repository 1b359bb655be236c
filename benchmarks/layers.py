"""Layer benchmark: every family's KA conv beside plain-conv baselines. See ``--help``.

Example:
    python benchmarks/layers.py --device cuda --markdown reports/layers-cuda.md
"""

from kanconvs.bench.layers import main

if __name__ == "__main__":
    raise SystemExit(main())
