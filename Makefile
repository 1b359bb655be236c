# kanconvs developer commands. Every target that needs Python sets up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kanconvs-install.stamp

.DEFAULT_GOAL := help
.PHONY: help venv data demo test lint typecheck docs pytest bench-layers bench-gpu bench-table-gpu clean

help:
	@echo "make venv       create $(VENV) and install kanconvs[dev] (pinned by constraints.txt)"
	@echo "make demo       venv + kanconvs bench --quick --int8: 7 families on the embedded MNIST subset (CPU, < 10 min)"
	@echo "make data       install Debian's dataset-fashion-mnist where apt-get is available (optional)"
	@echo "make bench-layers  venv + layer benchmark on CPU (prints the table)"
	@echo "make test       venv + ruff check + ruff format --check + mypy + docs + pytest"
	@echo "make lint       venv + ruff check + ruff format --check"
	@echo "make docs       venv + the documentation site (mkdocs build --strict, into build/site)"
	@echo "make bench-gpu  venv + layer benchmark on CUDA"
	@echo "make bench-table-gpu  venv + data + the full Fashion-MNIST comparison table on a GPU (hours; resumable)"
	@echo "make clean      remove $(VENV), caches and build outputs"

venv: $(STAMP)

# Re-installs only when the package metadata or the pins change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	touch $@

demo: venv
	$(BIN)/kanconvs bench --quick --int8 --output runs/bench-quick

# Full Fashion-MNIST offline: Debian's package puts the IDX files where kanconvs.data looks. Best effort only.
data:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist || echo "make data: apt-get failed; Fashion-MNIST stays unavailable offline"; \
	else echo "make data: needs apt-get as root (or download=True with internet)"; fi

bench-layers: venv
	$(BIN)/kanconvs bench layers --device cpu

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy src/kanconvs

# pytest exits 5 when it collects no tests; that is a failure here, not a pass.
pytest: venv
	@rc=0; $(BIN)/pytest -n 2 || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

# --strict: a broken link, snippet or API cross-reference fails the build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs pytest

bench-gpu: venv
	$(BIN)/kanconvs bench layers --device cuda

# The issue's GPU report: every family, 4 and 8 layers, the four norm settings, 10 epochs. Re-run to resume.
bench-table-gpu: venv data
	$(BIN)/kanconvs bench --dataset fashion-mnist --models all --depth 4,8 \
		--norms instance,instance-affine,batch,batch-l1 --epochs 10 --int8 --output runs/bench-fashion-mnist \
		data.num_workers=8 progress=false

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
