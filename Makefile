# The two commands a new machine needs: `make demo` and `make test`.
# Both set up .venv from nothing when it is missing (see tools/setup_env.sh).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo bench clean

setup:
	@bash tools/setup_env.sh

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: setup
	$(VENV)/bin/snnsim demo

bench: setup
	$(PY) benchmarks/counting_overhead.py

clean:
	rm -rf $(VENV) snnsim-demo build *.egg-info
