"""solvers.petsc_dmda.GridDM: scatter/gather round trips, ghost exchange (periodic wrap, other
ranks' cells) and assembled matrices in the DMDA ordering, on 1 and 2 ranks."""
import os
import subprocess
import sys

import pytest

from pdenet.parallel import mpi_available, mpiexec_command
from solvers import petsc_backend as pb

from conftest import ROOT

HAVE_PETSC, WHY = pb.available()
SCRIPT = os.path.join(ROOT, "tests", "mpi", "dmda_check.py")


@pytest.mark.petsc
@pytest.mark.skipif(not HAVE_PETSC, reason=f"PETSc: {WHY}")
@pytest.mark.parametrize("ranks", [1, 2])
def test_grid_dm(ranks):
    if ranks > 1 and not mpi_available()[0]:
        pytest.skip(mpi_available()[1])
    cmd = [sys.executable, SCRIPT] if ranks == 1 else mpiexec_command(ranks, [SCRIPT])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == f"OK {ranks}"
