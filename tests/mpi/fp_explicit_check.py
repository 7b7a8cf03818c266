"""Run the explicit Fokker-Planck cases of tests/test_petsc_fp_explicit.py with backend petsc on
every rank of MPI.COMM_WORLD (python fp_explicit_check.py OUTDIR, under mpiexec or alone);
rank 0 writes OUTDIR/<case>.h5 and prints "OK <ranks>"."""
import os
import sys

from mpi4py import MPI

import pdenet

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from test_petsc_fp_explicit import CASES, PETSC  # noqa: E402

comm = MPI.COMM_WORLD
out = sys.argv[1]
for name, sets in CASES.items():
    pdenet.run(os.path.join(os.path.dirname(__file__), "..", "..", "cases", name),
               output=os.path.join(out, name.replace(".toml", ".h5")), overrides=[*sets, PETSC], comm=comm)
if comm.Get_rank() == 0:
    print(f"OK {comm.Get_size()}")
