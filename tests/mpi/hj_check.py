"""Run under mpiexec -n P (or alone): the hamilton-jacobi model on PETSc over this communicator.

Usage: hj_check.py OUT.npz CASE [--set KEY=VALUE ...] [-- CASE ...]. Each case runs with
backend = "petsc"; rank 0 saves u (all saved times) of each case as u0, u1, ... in OUT.npz with
the ranks, the TS description and the final error, and prints OK P."""
import sys

import numpy as np
from mpi4py import MPI

import pdenet


def main(argv):
    out, rest = argv[0], argv[1:]
    runs, cur = [], None
    it = iter(rest)
    for tok in it:
        if tok == "--set":
            cur[1].append(next(it))
        elif tok == "--":
            cur = None
        else:
            cur = (tok, ['solver.backend="petsc"'])
            runs.append(cur)
    comm = MPI.COMM_WORLD
    saved = {}
    for k, (case, sets) in enumerate(runs):
        r = pdenet.run(case, overrides=sets, write=False, comm=comm)
        saved[f"u{k}"] = r.fields["u"]
        saved[f"ranks{k}"] = r.attrs["petsc_ranks"]
        saved[f"solver{k}"] = r.attrs["petsc_solver"]
        saved[f"error{k}"] = r.attrs.get("final_error_u_max", np.nan)
    if comm.Get_rank() == 0:
        np.savez(out, **saved)
        print(f"OK {comm.Get_size()}")


if __name__ == "__main__":
    main(sys.argv[1:])
