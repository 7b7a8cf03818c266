"""Training the network PDE with the drivers of :mod:`solvers.optim`, with held-out evaluation.

:func:`train` runs one method (``gd``, ``adam``, ``pam``, ``msa``, ``emsa``)
on a :class:`~pdenet.network.pde.NetworkPDE` with training data, and after
every ``eval_every`` iterations evaluates the loss and accuracy on held-out
data. It returns the history (a dict of 1-D arrays, k = 0 the initial
parameters) and never loses it: on divergence (a non-finite loss), on
Ctrl-C and on a solver failure the history so far is handed to
``on_history`` before the exception propagates.

The thesis's drivers (momentum, nesterov, entropy-sgd, hj, heat, elastic, parle) are in their own
modules, dispatched by :mod:`.methods`; elastic/parle split their replicas over the ranks of ``comm``.

Mini-batches (``batch_size`` > 0; not pam; msa/emsa: the sampled PMP of :mod:`.emsa`): every iteration draws
the next batch of a seeded permutation of the training samples (a new
permutation per epoch); the recorded ``loss`` is then the batch loss, and
``full_loss`` (every ``eval_every``) the loss on the whole training set.
"""
import numpy as np

from solvers import optim
from solvers.errors import NumericalError

from . import methods as thesis
from .distributed import DataParallel, parallel
from .objective import BatchObjective, NetworkObjective, pam_groups
from .emsa import LayeredPMP
from . import adversarial, maml, risk

METHODS = ("gd", "adam", "pam", "msa", "emsa", "maml", *thesis.METHODS)

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
          state=None, on_iterate=None):
    """Train ``net`` in place; returns the history dict (see the module docstring).

    ``options``: iterations, lr, batch_size, seed, tau, inner_tol, inner_maxiter,
    rho, controls, head_lr, box_a, box_b, eval_every (missing keys take the
    defaults of the ``[train]`` table). ``test`` = (inputs, targets) or None.
    ``comm``: an mpi4py communicator of more than one rank makes gd, adam, pam and the thesis drivers
    (msa/emsa: :class:`.emsa.LayeredPMP` sums over the ranks; elastic/parle: replicas over the ranks)
    data parallel (:mod:`.distributed`): every rank passes the same global data,
    solves its block of the samples (of each mini-batch, which all ranks draw
    alike) and holds the same parameters after every step.
    ``state`` (adam): a dict that holds the restart point after every iteration and, when it
    already holds one, the point to continue from (:func:`solvers.optim.adam`).
    ``on_iterate(k)``: called after iteration k's history row, at the parameters x^k (k = 0 the
    initial ones); it must leave the parameters unchanged (the [sgd_noise] recorder).
    """
    o = {"iterations": 100, "lr": 1e-2, "batch_size": 0, "seed": 0, "tau": 1.0, "inner_tol": 1e-6,
         "inner_maxiter": 200, "rho": 1.0, "controls": ["a"], "head_lr": 0.0, "eval_every": 1,
         "keep": "all", "risk_k": 0.0, "adversary": "none", "adversary_eps": 0.1, "adversary_norm": "linf",
         "adversary_steps": 1, "adversary_alpha": 0.0, "adversary_mix": 0.0, "robust_eval": False, **options}
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; use one of {', '.join(METHODS)}")
    if method == "maml":        # review §5 (58)-(59): meta-training on sine tasks, network/maml.py
        return _train_maml(net, o, progress, on_history, comm)
    box = _box(o, net)
    _check_control_options(o, method, comm)     # §5 objectives: risk-aware (risk.py), adversarial (adversarial.py)
    base_head = net.head
    if o["risk_k"] != 0.0:
        net.head = risk.RiskHead(base_head, o["risk_k"])
    engine = net
    if parallel(comm) and method in thesis.REPLICA_METHODS:
        pass        # replicas split over the ranks, each rank evaluating whole gradients (.drivers)
    elif parallel(comm):
        engine = DataParallel(net, comm)        # msa/emsa: the sums of emsa.LayeredPMP over the ranks
    batched = o["batch_size"] and method not in ("pam", "msa", "emsa")
    if batched:
        objective = BatchObjective(net, inputs, targets, min(o["batch_size"], inputs.shape[0]), o["seed"],
                                   o["keep"], engine)
    else:
        objective = NetworkObjective(net, inputs, targets, o["keep"], engine)
    attack = None
    if o["adversary"] != "none" or o["robust_eval"]:
        steps = o["adversary_steps"] if o["adversary"] == "pgd" else 1
        attack = dict(eps=o["adversary_eps"], norm=o["adversary_norm"], steps=steps,
                      alpha=o["adversary_alpha"] or None, h=net.h)
    if o["adversary"] != "none":
        objective = adversarial.AdversarialObjective(objective, **attack, mix=o["adversary_mix"])

    def replica_objective(a):       # elastic/parle: replica a's own mini-batch stream
        if batched:
            return BatchObjective(net, inputs, targets, min(o["batch_size"], inputs.shape[0]),
                                  o["seed"] + 1 + a, o["keep"], engine)
        return objective

    extra = []       # per-iteration evaluation rows, aligned with the driver's history

    def evaluate(k):
        row = {}
        if k % o["eval_every"] == 0 or k == o["iterations"]:
            if isinstance(objective, BatchObjective) or (o["batch_size"] and method in ("msa", "emsa")):
                row["full_loss"], _ = engine.loss(inputs, targets)
            if test is not None:
                J, m = engine.loss(*test)
                row["test_loss"] = J
                for key, v in m.items():
                    row["test_" + key] = v
                if attack is not None and (k == 0 or k == o["iterations"]):
                    row["test_robust_accuracy"] = adversarial.robust_accuracy(engine, *test, **attack)
        return row

    rows = []
    resumed = method == "adam" and state is not None and "it" in state
    first = int(state["it"]) + 1 if resumed else 0   # the iteration of the first new record

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
            optim.adam(objective, o["iterations"], o["lr"], box=box, callback=callback, state=state)
        elif method in thesis.METHODS:
            thesis.run(method, objective, o, box, callback, replica_objective,
                       comm if parallel(comm) else None, net)
        elif method == "pam":
            optim.pam(objective, o["iterations"], o["tau"], pam_groups(net), box=box, inner_tol=o["inner_tol"],
                      inner_maxiter=o["inner_maxiter"], callback=callback)
        else:
            system = LayeredPMP(net, inputs, targets, controls=tuple(o["controls"]), box=box,
                                head_lr=o["head_lr"], batch_size=o["batch_size"], seed=o["seed"],
                                inner_tol=o["inner_tol"], inner_maxiter=o["inner_maxiter"],
                                comm=comm if parallel(comm) else None)
            if method == "msa":
                optim.msa(system, o["iterations"], callback=callback)
            else:
                optim.emsa(system, o["iterations"], o["rho"], callback=callback)
    finally:
        net.head = base_head
        history = _merge(rows, extra, first=first)
        if on_history is not None:
            on_history(history)
    return history


def _train_maml(net, o, progress, on_history, comm):
    if parallel(comm):
        raise ValueError("maml runs on one rank only")
    if net.head.kind != "classes" or net.head.outputs != 1 or net.head.loss_name != "l2":
        raise ValueError("maml regresses a scalar: model.output kind = 'classes', classes = 1, loss = 'l2'")
    history = {}
    try:
        args = dict(iterations=o["iterations"], lr=o["lr"], meta_batch=o.get("maml_meta_batch", 5),
                    shots=o.get("maml_shots", 10), inner_lr=o.get("maml_inner_lr", 0.5),
                    inner_steps=o.get("maml_inner_steps", 1), seed=o["seed"])
        loss = maml.train_maml(net, order=o.get("maml_order", 2), progress=progress, **args)
        history = {"loss": loss, "iteration": np.arange(1, loss.size + 1, dtype=float)}
        shots, alpha, steps = args["shots"], args["inner_lr"], args["inner_steps"]
        m0, s0 = maml.evaluate(net, shots=shots, inner_lr=alpha, inner_steps=0)
        m1, s1 = maml.evaluate(net, shots=shots, inner_lr=alpha, inner_steps=steps)
        history.update(maml_query_loss_before=np.array([m0]), maml_query_loss_adapted=np.array([m1]),
                       maml_query_loss_adapted_stderr=np.array([s1]))
    finally:
        if on_history is not None and history:
            on_history(history)
    return history


def _check_control_options(o, method, comm):
    if o["risk_k"] != 0.0 or o["adversary"] != "none":
        if parallel(comm):
            raise ValueError("risk_k / adversary run on one rank only (the risk measure couples the "
                             "samples; the attack needs the whole input co-state)")
    if o["risk_k"] != 0.0 and method in ("msa", "emsa"):
        raise ValueError(f"risk_k needs a gradient driver (gd, adam, pam), not {method}")
    if o["adversary"] != "none":
        if method not in ("gd", "adam"):
            raise ValueError(f"adversarial training runs with gd or adam, not {method}")
        if o["adversary"] not in ("fgsm", "pgd") or o["adversary_norm"] not in adversarial.NORMS:
            raise ValueError("adversary is none, fgsm or pgd and adversary_norm linf or l2")


def _merge(rows, extra, first=0):
    """One dict of arrays from the driver's rows and the evaluation rows (appended in step);
    ``first``: the first row's iteration (a resumed run)."""
    merged = [{**r, **e} for r, e in zip(rows, extra)]
    keys = list(dict.fromkeys(k for r in merged for k in r))
    out = {k: np.array([r.get(k, np.nan) for r in merged], dtype=float) for k in keys}
    out["iteration"] = np.arange(first, first + len(merged), dtype=float)
    return out
