"""Side-by-side benchmark against torch-conv-kan, imported from a local checkout. See ``--help``.

Example:
    python benchmarks/vs_reference.py --reference-dir ../torch-conv-kan --device cpu \
        --markdown reports/vs-reference-cpu.md
"""

from kanconvs.cli.bench_cmd import script_main

if __name__ == "__main__":
    raise SystemExit(script_main("vs-reference", "benchmarks/vs_reference.py"))
