"""MPI for pdenet: the world communicator when running under ``mpiexec``, a
one-rank stand-in otherwise, and the ``mpiexec`` command line for tests and
benchmarks.

mpi4py is optional (the ``petsc`` extra, ``scripts/setup-petsc.sh``). It is
imported only when the environment says the process was started by an MPI
launcher, so a plain serial run never initialises MPI.
"""
import os
import shutil
import sys

from .errors import PdenetError

#: variables that MPI launchers (Open MPI, MPICH/Hydra, PMIx, Slurm's PMI) set in every rank
_LAUNCHER_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
INSTALL_HINT = "install MPI and mpi4py with scripts/setup-petsc.sh"


class SerialComm:
    """The communicator of a single process (the subset of mpi4py's API pdenet uses)."""

    rank, size = 0, 1

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]

    def allgather(self, obj):
        return [obj]

    def barrier(self):
        pass

    def Abort(self, code=1):
        os._exit(code)


def launched_size():
    """The number of ranks an MPI launcher started (1 when not under one)."""
    for var in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    return 1


def world():
    """mpi4py's COMM_WORLD under an MPI launcher with more than one rank, else a
    :class:`SerialComm` (MPI is then not even initialised).

    Under ``mpiexec -n P`` with P > 1 and no mpi4py every rank would repeat the
    whole job, so that is an error naming the set-up script.
    """
    size = launched_size()
    if size <= 1:
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError:
        raise PdenetError(f"started by mpiexec with {size} ranks but mpi4py is not installed; "
                          f"{INSTALL_HINT}") from None
    return MPI.COMM_WORLD


def mpi_available():
    """(True, '') when mpi4py imports and an ``mpiexec`` is on PATH, else (False, reason)."""
    if shutil.which("mpiexec") is None:
        return False, f"no mpiexec on PATH ({INSTALL_HINT})"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False, f"mpi4py is not installed ({INSTALL_HINT})"
    return True, ""


def mpiexec_command(nprocs, args, python=None):
    """``mpiexec -n P [flags] python ARGS`` as an argument list.

    Open MPI refuses to start as root without ``--allow-run-as-root`` and more
    ranks than cores without ``--oversubscribe``; both are added for Open MPI
    (as root, resp. always), never for MPICH, which rejects unknown flags.
    """
    exe = shutil.which("mpiexec") or "mpiexec"
    cmd = [exe, "-n", str(int(nprocs))]
    if _is_openmpi(exe):
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        cmd.append("--oversubscribe")
    return cmd + [python or sys.executable, *args]


def _is_openmpi(exe):
    import subprocess

    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in out.stdout + out.stderr or "OpenRTE" in out.stdout + out.stderr
