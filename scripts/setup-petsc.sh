#!/usr/bin/env bash
# Opt-in PETSc/MPI set-up: MPI and BLAS/LAPACK from the system, then mpi4py,
# petsc and petsc4py built by pip into .venv (the `petsc` extra of setup.cfg).
#
# The first build of petsc compiles PETSc from source (about 10-20 minutes on
# 2 cores); pip keeps the built wheels in its cache, so later set-ups take
# seconds. Idempotent: re-running only reinstalls when setup.cfg changed.
#
# Usage: scripts/setup-petsc.sh [extra extras]   e.g. scripts/setup-petsc.sh test
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mpiexec >/dev/null || need_apt+=(openmpi-bin)
command -v mpicc >/dev/null || need_apt+=(libopenmpi-dev)
# PETSc needs BLAS/LAPACK headers-free shared libraries; openblas gives both.
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\b\|liblapack\.so\b'; then
  need_apt+=(libopenblas-dev)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup-petsc: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup-petsc: missing ${need_apt[*]}; install MPI (mpicc, mpiexec) and BLAS/LAPACK" \
         "with your system's package manager (Debian: apt-get install libopenmpi-dev" \
         "openmpi-bin libopenblas-dev) and re-run" >&2
    exit 1
  fi
fi

extras="petsc"
[ -n "${1:-}" ] && extras="petsc,$1"
# A C-only, optimised PETSc: no Fortran compiler is needed, and the debug
# build would be several times slower.
export PETSC_CONFIGURE_OPTIONS="${PETSC_CONFIGURE_OPTIONS:---with-fc=0 --with-debugging=0}"
# Open MPI refuses to run as root without these (mpi4py's and petsc's
# configure steps start MPI programs).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export MAKEFLAGS="${MAKEFLAGS:--j$(nproc)}"
scripts/setup-venv.sh
# mpi4py from source against the system MPI (the binary wheels may carry
# another MPI ABI); petsc before petsc4py so that petsc4py's isolated build
# reuses the petsc wheel pip just built and cached instead of compiling twice.
if ! .venv/bin/python -c 'import mpi4py, petsc' 2>/dev/null; then
  .venv/bin/python -m pip install --no-binary mpi4py "mpi4py>=3.1" "petsc>=3.20"
fi
scripts/setup-venv.sh "$extras"
.venv/bin/python -c 'import mpi4py, petsc4py; petsc4py.init(); from petsc4py import PETSc; print("setup-petsc: PETSc", ".".join(map(str, PETSc.Sys.getVersion())), "mpi4py", mpi4py.__version__)'
