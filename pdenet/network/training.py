"""Training the network PDE with the drivers of :mod:`solvers.optim`, with held-out evaluation.

:func:`train` runs one method (``gd``, ``adam``, ``pam``, ``msa``, ``emsa``)
on a :class:`~pdenet.network.pde.NetworkPDE` with training data, and after
every ``eval_every`` iterations evaluates the loss and accuracy on held-out
data. It returns the history (a dict of 1-D arrays, k = 0 the initial
parameters) and never loses it: on divergence (a non-finite loss), on
Ctrl-C and on a solver failure the history so far is handed to
``on_history`` before the exception propagates.

Mini-batches (``batch_size`` > 0, gd and adam only): every iteration draws
the next batch of a seeded permutation of the training samples (a new
permutation per epoch); the recorded ``loss`` is then the batch loss, and
``full_loss`` (every ``eval_every``) the loss on the whole training set.
"""
import numpy as np

from solvers import optim
from solvers.errors import NumericalError

from .distributed import DataParallel, parallel
from .objective import BatchObjective, NetworkObjective, pam_groups
from .pmp import NetworkPMP

METHODS = ("gd", "adam", "pam", "msa", "emsa")

__all__ = ["METHODS", "train"]


def _box(options, net):
    box = {}
    if options.get("box_a") is not None:
        box["a"] = tuple(options["box_a"])
    if options.get("box_b") is not None:
        for name in net.operator.params:
            box[name] = tuple(options["box_b"])
    return box


def train(net, inputs, targets, method, options, test=None, progress=None, on_history=None, comm=None,
          on_iterate=None):
    """Train ``net`` in place; returns the history dict (see the module docstring).

    ``options``: iterations, lr, batch_size, seed, tau, inner_tol, inner_maxiter,
    rho, controls, head_lr, box_a, box_b, eval_every (missing keys take the
    defaults of the ``[train]`` table). ``test`` = (inputs, targets) or None.
    ``comm``: an mpi4py communicator of more than one rank makes gd, adam and pam
    data parallel (:mod:`.distributed`): every rank passes the same global data,
    solves its block of the samples (of each mini-batch, which all ranks draw
    alike) and holds the same parameters after every step.
    ``on_iterate(k)``: called after iteration k's history row, at the parameters x^k (k = 0 the
    initial ones); it must leave the parameters unchanged (the [sgd_noise] recorder).
    """
    o = {"iterations": 100, "lr": 1e-2, "batch_size": 0, "seed": 0, "tau": 1.0, "inner_tol": 1e-6,
         "inner_maxiter": 200, "rho": 1.0, "controls": ["a"], "head_lr": 0.0, "eval_every": 1,
         "keep": "all", **options}
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; use one of {', '.join(METHODS)}")
    box = _box(o, net)
    engine = net
    if parallel(comm):
        if method in ("msa", "emsa"):
            raise ValueError(f"{method} runs on one rank only; data-parallel training (mpiexec -n P) "
                             "covers gd, adam and pam")
        engine = DataParallel(net, comm)
    if o["batch_size"] and method in ("gd", "adam"):
        objective = BatchObjective(net, inputs, targets, min(o["batch_size"], inputs.shape[0]), o["seed"],
                                   o["keep"], engine)
    else:
        objective = NetworkObjective(net, inputs, targets, o["keep"], engine)

    extra = []       # per-iteration evaluation rows, aligned with the driver's history

    def evaluate(k):
        row = {}
        if k % o["eval_every"] == 0 or k == o["iterations"]:
            if isinstance(objective, BatchObjective):
                row["full_loss"], _ = engine.loss(inputs, targets)
            if test is not None:
                J, m = engine.loss(*test)
                row["test_loss"] = J
                for key, v in m.items():
                    row["test_" + key] = v
        return row

    rows = []

    def callback(k, info):
        rows.append(info)
        extra.append(evaluate(k))
        if on_iterate is not None:
            on_iterate(k)
        if progress is not None and k > 0:
            progress(1)
        if not np.isfinite(info["loss"]):
            raise NumericalError(f"{method}: the loss became {info['loss']} at iteration {k} "
                                 "(step too large? try a smaller lr/tau or a box)")
        return False

    try:
        if method == "gd":
            optim.gd(objective, o["iterations"], o["lr"], box=box, callback=callback)
        elif method == "adam":
            optim.adam(objective, o["iterations"], o["lr"], box=box, callback=callback)
        elif method == "pam":
            optim.pam(objective, o["iterations"], o["tau"], pam_groups(net), box=box, inner_tol=o["inner_tol"],
                      inner_maxiter=o["inner_maxiter"], callback=callback)
        else:
            system = NetworkPMP(net, inputs, targets, controls=tuple(o["controls"]), box=box,
                                head_lr=o["head_lr"])
            if method == "msa":
                optim.msa(system, o["iterations"], callback=callback)
            else:
                optim.emsa(system, o["iterations"], o["rho"], callback=callback)
    finally:
        history = _merge(rows, extra)
        if on_history is not None:
            on_history(history)
    return history


def _merge(rows, extra):
    """One dict of arrays from the driver's rows and the evaluation rows (appended in step)."""
    merged = [{**r, **e} for r, e in zip(rows, extra)]
    keys = list(dict.fromkeys(k for r in merged for k in r))
    out = {k: np.array([r.get(k, np.nan) for r in merged], dtype=float) for k in keys}
    out["iteration"] = np.arange(len(merged), dtype=float)
    return out
