# The two entry points of the README. Each is idempotent and builds the
# virtual environment it needs in .venv.
.PHONY: demo test test-all test-petsc typecheck bench docs clean

demo:
	scripts/setup-venv.sh data
	scripts/demo.sh

test:
	scripts/setup-venv.sh test
	.venv/bin/python -m pytest -q

test-all:
	scripts/setup-venv.sh test
	.venv/bin/python -m pytest -q -m "slow or not slow"

# Static types of solvers/ and the public API (the [mypy] section of setup.cfg); mypy is in the
# test extra. CI runs it after the tests.
typecheck:
	scripts/setup-venv.sh test
	.venv/bin/python -m mypy

# Opt-in: builds MPI + PETSc into .venv (the first time compiles PETSc, ~20 min on 2 cores;
# pip caches the wheel) and runs the PETSc/MPI tests and the MPI sweep test.
test-petsc:
	scripts/setup-petsc.sh test
	.venv/bin/python -m pytest -q -m petsc

# The documentation site (issue 17): executes docs/tutorial.ipynb, runs the gallery of cases/,
# then mkdocs build --strict (warnings are errors) into build/site. CI runs it.
docs:
	scripts/setup-venv.sh test,data,docs
	.venv/bin/python scripts/build_docs.py

bench:
	scripts/setup-venv.sh bench
	.venv/bin/pdenet bench network

clean:
	rm -rf out .pytest_cache
