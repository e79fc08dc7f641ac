# The README's two commands: `make run` (install + start the app on the embedded default)
# and `make test` (install + run every test, browser tests included).
PYTHON ?= python3
PORT ?= 8501

.PHONY: install install-dev browser datasets compiler run test test-e2e bench bench-quick lint

install:
	$(PYTHON) -m pip install -q -r requirements.txt

install-dev:
	$(PYTHON) -m pip install -q -r requirements-dev.txt

# Debian's chromium for the real-browser tests (Playwright's own browser download fails offline).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# Debian's Fashion-MNIST (the real IDX files) for the tests that load it; the app itself does not need it.
FASHION_MNIST_DIR = /usr/share/datasets/fashion-mnist
datasets:
	@test -d $(FASHION_MNIST_DIR) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null)

# A C++ compiler for the test that compiles and links the exported C array (tests/test_c_export.py).
compiler:
	@command -v g++ >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null)

run: install
	$(PYTHON) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true

# Two test processes (pytest-xdist), a file each at a time: many tests wait on subprocesses (CLI runs, workers,
# a browser) rather than compute, so two overlap well on two cores; a file's module fixtures stay in one process.
TEST_WORKERS ?= 2
test: install-dev browser datasets compiler
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-e2e: install-dev browser
	$(PYTHON) -m pytest -q -m e2e -n $(TEST_WORKERS) --dist loadfile

bench: install
	$(PYTHON) -m benchmarks

bench-quick: install
	$(PYTHON) -m benchmarks --quick

lint:
	$(PYTHON) -m ruff check .
