"""The thesis's training drivers as ``[train] method`` values of the network model: their case keys,
their per-method defaults and the dispatch from :func:`pdenet.network.training.train`.

Methods: ``momentum``, ``nesterov`` (:mod:`.momentum`), ``entropy-sgd`` (:mod:`.entropy_sgd`),
``hj`` (:mod:`.hj`), ``heat`` (:mod:`.heat`), ``elastic`` (:mod:`.elastic`), ``parle``
(:mod:`.parle`). Keys left unset (None) take the method's default from the thesis (each module's
``DEFAULTS``); the update rules, keys and defaults are in docs/network-training.md.
"""
from __future__ import annotations

from ..case import Key
from ..errors import CaseError
from . import elastic as _elastic
from . import entropy_sgd as _entropy
from . import heat as _heat
from . import hj as _hj
from . import parle as _parle
from .momentum import momentum as _momentum

METHODS = ("momentum", "nesterov", "entropy-sgd", "hj", "heat", "elastic", "parle")
#: methods whose replicas may run on MPI ranks (the others are data parallel there)
REPLICA_METHODS = ("elastic", "parle")

_DEFAULTS = {"entropy-sgd": _entropy.DEFAULTS, "hj": _hj.DEFAULTS, "heat": _heat.DEFAULTS,
             "elastic": _elastic.DEFAULTS, "parle": _parle.DEFAULTS}

SCHEMA = {
    "metric": Key("str", "euclidean", "momentum/nesterov/entropy-sgd/hj/heat/elastic/parle: the metric of the "
                  "steps. `euclidean`: the gradient of the array entries; `l2`: the L^2(Y x (0, T)) gradient "
                  "(each entry divided by its quadrature weight), whose step sizes do not depend on the mesh.",
                  choices=["euclidean", "l2"]),
    "momentum": Key("float", 0.9, "momentum/nesterov: momentum coefficient mu in [0, 1).", minimum=0.0),
    "gamma": Key("float", None, "entropy-sgd/hj/parle: initial scope gamma_0 of the local entropy "
                 "(default 100); heat: initial variance of the Gaussian perturbations (default 1e-4).",
                 positive=True),
    "scoping": Key("float", 1e-3, "entropy-sgd/hj/heat/elastic/parle: gamma_1 of the scoping "
                   "gamma_k = gamma_0 (1 - gamma_1)^k (and rho_k alike), per outer iteration.", minimum=0.0),
    "langevin_steps": Key("int", None, "L: inner steps per outer iteration (entropy-sgd 20, hj 5, parle 25) "
                          "or perturbations per step (heat 20).", positive=True),
    "langevin_lr": Key("float", 0.1, "entropy-sgd/hj/parle: inner step eta_y (eta^(0) of Parle).",
                       positive=True),
    "langevin_noise": Key("float", None, "entropy-sgd/elastic/parle: external thermal noise 1/beta "
                          "(default 1e-8 for entropy-sgd, 0 for elastic and parle).", minimum=0.0),
    "averaging": Key("float", 0.25, "entropy-sgd/parle: alpha of the exponential average of the inner "
                     "iterates.", minimum=0.0),
    "replicas": Key("int", 4, "elastic/parle: number of replicas n (split over MPI ranks on backend "
                    "petsc).", positive=True),
    "coupling": Key("float", 1.0, "elastic/parle: initial coupling rho_0 of the replicas to the reference "
                    "variable.", positive=True),
    "master_lr": Key("float", None, "elastic/parle: step eta' of the reference variable (default rho_k / n: "
                     "the reference variable becomes the replica mean).", positive=True),
}

OPTIONS = tuple(SCHEMA)


def validate(train):
    """Checks of the ``[train]`` table the key types cannot make (a one-line :class:`CaseError`)."""
    if train["momentum"] >= 1.0:
        raise CaseError(f"momentum must be < 1, got {train['momentum']}", key="train.momentum")
    if train["averaging"] >= 1.0:
        raise CaseError(f"averaging alpha must be < 1, got {train['averaging']}", key="train.averaging")


def option(o, method, key):
    """``o[key]``, or the method's default when it is None."""
    v = o.get(key)
    if v is None:
        v = _DEFAULTS.get(method, {}).get(key)
    return v


def run(method, objective, o, box, callback, make_objective=None, comm=None, net=None):
    """Run ``method`` on ``objective`` with the options dict ``o``; returns the history.
    ``net``: the NetworkPDE, for ``metric = "l2"``."""
    it, lr = o["iterations"], o["lr"]
    metric = None
    if o.get("metric", "euclidean") == "l2":
        from .drivers import l2_weights

        metric = l2_weights(net)

    def opt(key):
        return option(o, method, key)

    if method in ("momentum", "nesterov"):
        return _momentum(objective, it, lr, mu=o["momentum"], nesterov=method == "nesterov", box=box, metric=metric,
                         callback=callback)
    if method == "entropy-sgd":
        return _entropy.entropy_sgd(objective, it, lr, gamma=opt("gamma"), scoping=opt("scoping"),
                                    langevin_steps=opt("langevin_steps"), langevin_lr=opt("langevin_lr"),
                                    langevin_noise=opt("langevin_noise"), averaging=opt("averaging"),
                                    seed=o["seed"], box=box, metric=metric, callback=callback)
    if method == "hj":
        return _hj.hj(objective, it, lr, gamma=opt("gamma"), scoping=opt("scoping"),
                      langevin_steps=opt("langevin_steps"), langevin_lr=opt("langevin_lr"), box=box, metric=metric,
                      callback=callback)
    if method == "heat":
        return _heat.heat(objective, it, lr, gamma=opt("gamma"), scoping=opt("scoping"),
                          langevin_steps=opt("langevin_steps"), seed=o["seed"], box=box, metric=metric, callback=callback)
    if method == "elastic":
        return _elastic.elastic(objective, it, lr, make_objective, replicas=opt("replicas"),
                                coupling=opt("coupling"), scoping=opt("scoping"),
                                langevin_noise=opt("langevin_noise"), master_lr=opt("master_lr"),
                                seed=o["seed"], box=box, metric=metric, callback=callback, comm=comm)
    if method == "parle":
        return _parle.parle(objective, it, lr, make_objective, replicas=opt("replicas"), gamma=opt("gamma"),
                            coupling=opt("coupling"), scoping=opt("scoping"),
                            langevin_steps=opt("langevin_steps"), langevin_lr=opt("langevin_lr"),
                            langevin_noise=opt("langevin_noise"), averaging=opt("averaging"),
                            master_lr=opt("master_lr"), seed=o["seed"], box=box, metric=metric, callback=callback,
                            comm=comm)
    raise ValueError(f"unknown method {method!r}")
