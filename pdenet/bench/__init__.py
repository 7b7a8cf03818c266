"""``pdenet bench SUITE``: benchmarks with ratios against peers measured in the same run.

One module per suite, imported only when its suite runs (:data:`SUITES`); every suite starts
one worker process per contender through :mod:`pdenet.bench.common` (pinned threads, timing in
rounds, peak RSS, one JSON line back):

=================  ===========================  ============================================
suite              module                       what
=================  ===========================  ============================================
network            :mod:`.network`              forward + gradient of the dense network vs
                                                PyTorch and the bare GEMMs
training           :mod:`.training`             Adam on the digits network vs PyTorch
fokker-planck      :mod:`.grids`                2-D Fokker-Planck vs py-pde, bandwidth bound
hamilton-jacobi    :mod:`.grids`                2-D viscous HJ vs py-pde, bandwidth bound
petsc              :mod:`.petsc` (+ :mod:`.rows`)  GAMG steady state, DMDA steps, data- and
                                                row-parallel network on 1 and 2 ranks
=================  ===========================  ============================================

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
