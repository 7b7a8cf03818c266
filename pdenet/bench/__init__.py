"""``pdenet bench SUITE``: benchmarks with ratios against peers measured in the same run.

One module per suite, imported only when its suite runs (:data:`SUITES`); every suite starts
one worker process per contender through :mod:`pdenet.bench.common` (pinned threads, timing in
rounds, peak RSS, one JSON line back):

* ``network`` (:mod:`.network`): forward + gradient of the dense network against PyTorch and
  the bare GEMMs;
* ``training`` (:mod:`.training`): Adam on the digits network against PyTorch;
* ``fokker-planck``, ``hamilton-jacobi`` (:mod:`.grids`): the 2-D grid solvers against py-pde
  and a memory-bandwidth bound;
* ``petsc`` (:mod:`.petsc`, with :mod:`.rows`): the GAMG steady state, DMDA explicit steps, the
  data-parallel and the row-distributed network on 1 and 2 ranks.

``python -m pdenet.bench.rows [N S L K repeat]`` runs the row-distributed part alone.
"""
from __future__ import annotations

import importlib
from typing import Any

# suite -> (module, runner, most repeats the suite takes or None); every runner is
# run(size, repeat, threads) and prints its report
SUITES: dict[str, tuple[str, str, int | None]] = {
    "network": ("network", "run_network", None),
    "training": ("training", "run_training", None),
    "fokker-planck": ("grids", "run_fokker_planck", 5),
    "hamilton-jacobi": ("grids", "run_hamilton_jacobi", None),
    "petsc": ("petsc", "run_petsc", 3),
}


def main(args: Any) -> int:
    """The ``pdenet bench`` command: ``args.suite`` (default network), ``quick``, ``repeat``, ``threads``."""
    size = "quick" if args.quick else "full"
    module, runner, most = SUITES[getattr(args, "suite", None) or "network"]
    run = getattr(importlib.import_module(f"{__name__}.{module}"), runner)
    run(size, args.repeat if most is None else min(args.repeat, most), args.threads)
    return 0
