"""Model benchmark: registered models beside their plain-conv baselines (``family="conv"``). See ``--help``.

Example:
    python benchmarks/models.py --device cpu --models simple_kagn_4,simple_kan_4 --batch-size 32 \
        --input-size 1 28 28 --threads 2 --markdown reports/models-cpu.md
"""

from kanconvs.cli.bench_cmd import script_main

if __name__ == "__main__":
    raise SystemExit(script_main("models", "benchmarks/models.py"))
