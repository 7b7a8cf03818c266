# The two entry points of the README. Each is idempotent and builds the
# virtual environment it needs in .venv.
.PHONY: demo test test-all bench clean

demo:
	scripts/setup-venv.sh data
	scripts/demo.sh

test:
	scripts/setup-venv.sh test
	.venv/bin/python -m pytest -q

test-all:
	scripts/setup-venv.sh test
	.venv/bin/python -m pytest -q -m "slow or not slow"

bench:
	scripts/setup-venv.sh bench
	.venv/bin/pdenet bench network

clean:
	rm -rf out .pytest_cache
