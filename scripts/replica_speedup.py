"""Wall clock of Parle's training loop with its replicas on 1 rank and on P ranks (issue 15).

    mpiexec -n 1 python scripts/replica_speedup.py     # then -n 2; prints the seconds of train()

Digits (1438 training samples), full-batch gradients, 2 replicas, L = 5, 4 outer iterations (40
gradient evaluations); only the training loop is timed (not start-up, data, output).
"""
import sys
import time

from mpi4py import MPI

import pdenet
from pdenet.network.training import train

SETS = ['train.method="parle"', "train.replicas=2", "train.langevin_steps=5", "train.lr=1", "train.langevin_lr=1",
        'train.metric="l2"', "train.coupling=10", "train.iterations=4", "train.eval_every=100",
        'solver.backend="petsc"', *sys.argv[1:]]
comm = MPI.COMM_WORLD
case = pdenet.load_case("cases/digits_adam.toml", SETS)
model = case.model_cls(case, comm=comm)
options = {k: case["train." + k] for k in case["train"] if k != "method"}
comm.Barrier()
t = time.perf_counter()
h = train(model.net, model.inputs, model.targets, "parle", options, comm=comm if comm.Get_size() > 1 else None)
comm.Barrier()
wall = time.perf_counter() - t
if comm.Get_rank() == 0:
    print(f"ranks {comm.Get_size()}: train {wall:.2f} s, final loss {h['loss'][-1]:.12g}, "
          f"gradient evaluations {int(h['gradient_evaluations'][-1])}")
