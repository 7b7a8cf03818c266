"""Issue 13 benchmark: the steady solve of a 2-D Fokker-Planck problem with a state-dependent full
diffusion tensor D(x) (Ito form) against the same problem with a constant tensor, by the built-in
sparse LU (solvers.linear.steady_state) and by PETSc GMRES + GAMG (solvers.petsc_backend).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. \
        python scripts/bench_fp_tensor.py [side=512] [--no-petsc]

Prints one line per (problem, solver): seconds to assemble, seconds to solve, the residual
||A p||_max / (||A||_max ||p||_max), and for PETSc the iterations.
"""
import sys
import time

import numpy as np

from pdenet.fokkerplanck.fv import FokkerPlanckOperator, TensorField
from pdenet.mesh import Mesh
from solvers.linear import steady_state


def problem(side, field):
    mesh = Mesh([-3.0, -3.0], [3.0, 3.0], [side, side], "noflux")
    f = lambda x1, x2: (x1 ** 2 - 1) ** 2 / 4 + x2 ** 2 / 2  # noqa: E731
    if field:
        D = TensorField.from_callables(mesh, [
            [lambda x1, x2: 1.0 + 0.5 * np.sin(x1) ** 2, lambda x1, x2: 0.3 * np.cos(x1 + x2)],
            [lambda x1, x2: 0.3 * np.cos(x1 + x2), lambda x1, x2: 0.8 + 0.2 * np.tanh(x2)]])
    else:
        D = np.array([[1.0, 0.3], [0.3, 0.8]])
    return mesh, FokkerPlanckOperator(mesh, potential=f, diffusion=D, form="ito")


def main():
    side = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 512
    petsc = "--no-petsc" not in sys.argv
    for field in (True, False):
        t0 = time.perf_counter()
        mesh, op = problem(side, field)
        A = op.matrix()
        t_asm = time.perf_counter() - t0
        w = np.full(mesh.size, mesh.cell_volume)
        name = "D(x) full tensor" if field else "constant tensor "
        t0 = time.perf_counter()
        p, res = steady_state(A, w, pivot=op.has_cross_terms)
        t_lu = time.perf_counter() - t0
        print(f"{side}^2 {name}  assemble {t_asm:7.2f} s  builtin LU {t_lu:7.2f} s  residual {res:.1e}  "
              f"nnz {A.nnz}", flush=True)
        if petsc:
            from solvers import petsc_backend as pb
            t0 = time.perf_counter()
            q, res2, info = pb.steady_state(A, w, rtol=1e-10)
            t_g = time.perf_counter() - t0
            print(f"{side}^2 {name}  PETSc {info['ksp']}/{info['pc']} {t_g:7.2f} s  residual {res2:.1e}  "
                  f"iterations {info['iterations']}  max|p - p_LU|/max p {np.abs(q - p).max() / p.max():.1e}",
                  flush=True)


if __name__ == "__main__":
    main()
