"""Adversarial training as a minimax control problem (review §5, eqs. 56–57).

The adversary controls a perturbation delta_s of each input f_s(0) within a ball
B_eps = {|delta|_inf <= eps} or {|delta|_{L2(Y)} = sqrt(h sum_i delta_i^2) <= eps} and
maximises the loss, the trainer minimises the worst case:

    min_theta (1/S) sum_s max_{delta_s in B_eps} Phi_s(f_s(T; f_s(0) + delta_s, theta)).

The adversary's gradient is the network's co-state at the inputs, lambda_0 = dJ/df(0)
(``Gradient.f0``, the exact discrete adjoint): the inner maximisation is projected gradient
ascent (PGD) from delta = 0,

    linf:  delta <- clip(delta + alpha sign(lambda_0), -eps, eps),
    l2:    delta <- P_eps(delta + alpha lambda_0 / |lambda_0|_{L2}),

with FGSM its one-step case (steps = 1, alpha = eps).  By Danskin's theorem the gradient of
the outer objective at theta is the gradient of the loss at the maximiser, so
:class:`AdversarialObjective` hands the optimisers the gradient at f(0) + delta*; with a
mixture ratio ``mix`` = alpha in (0, 1] it minimises the review's lower bound (eq. 57)
alpha Phi(theta) + (1 - alpha) Phi_adv(theta, delta*) instead (clean and perturbed losses).
``robust_accuracy`` measures the accuracy under the same attack.
"""
from __future__ import annotations

import numpy as np

__all__ = ["attack", "random_perturbation", "robust_accuracy", "AdversarialObjective", "NORMS"]

NORMS = ("linf", "l2")


def _l2(x, h):
    return np.sqrt(h * np.sum(x * x, axis=1, keepdims=True))


def _project(delta, eps, norm, h):
    if norm == "linf":
        return np.clip(delta, -eps, eps)
    n = _l2(delta, h)
    return delta * np.minimum(1.0, eps / np.maximum(n, 1e-300))


def attack(engine, f0, target, eps, norm="linf", steps=1, alpha=None, h=1.0):
    """The adversarial perturbation delta (S, N) of PGD with ``steps`` steps of size ``alpha``
    (default eps for one step, 2.5 eps/steps otherwise); ``engine`` has
    ``loss_and_gradient(f0, target)`` returning the gradient with ``.f0`` = dJ/df(0)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    alpha = (eps if steps == 1 else 2.5 * eps / steps) if alpha is None else alpha
    delta = np.zeros_like(f0)
    for _ in range(int(steps)):
        _, grad, _, _ = engine.loss_and_gradient(f0 + delta, target)
        lam = np.asarray(grad.f0)
        if norm == "linf":
            step = np.sign(lam)
        else:
            step = lam / np.maximum(_l2(lam, h), 1e-300)
        delta = _project(delta + alpha * step, eps, norm, h)
    return delta


def random_perturbation(shape, eps, norm="linf", h=1.0, seed=0):
    """A random perturbation of the same size as the attack's: random signs times eps
    (linf: on the corner of the ball, as FGSM's) or a uniformly random direction of L2 norm eps."""
    rng = np.random.default_rng(seed)
    if norm == "linf":
        return eps * rng.choice([-1.0, 1.0], size=shape)
    g = rng.standard_normal(shape)
    return eps * g / _l2(g, h)


def robust_accuracy(engine, f0, target, eps, norm="linf", steps=1, alpha=None, h=1.0):
    """Accuracy under the attack (the ``accuracy`` metric at f(0) + delta*)."""
    delta = attack(engine, f0, target, eps, norm, steps, alpha, h)
    _, metrics = engine.loss(f0 + delta, target)
    return float(metrics.get("accuracy", np.nan))


class AdversarialObjective:
    """Wraps an objective of :mod:`solvers.optim` (``NetworkObjective`` or ``BatchObjective``):
    each gradient call first runs the attack on the current (mini-)batch and returns the loss
    and gradient at the perturbed inputs (the inner max of the minimax problem)."""

    def __init__(self, objective, eps, norm="linf", steps=1, alpha=None, h=1.0, mix=0.0):
        self.inner, self.eps, self.norm, self.steps, self.alpha, self.h = objective, eps, norm, steps, alpha, h
        self.mix = float(mix)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def loss_and_gradient(self):
        inner = self.inner
        if hasattr(inner, "_next"):            # a BatchObjective: draw the batch once
            inner._next()
        delta = attack(inner.engine, inner.f0, inner.target, self.eps, self.norm, self.steps, self.alpha, self.h)
        J, grad, inner._metrics, _ = inner.engine.loss_and_gradient(inner.f0 + delta, inner.target,
                                                                    keep=inner.keep)
        if self.mix > 0.0:               # review eq. 57: alpha Phi + (1 - alpha) Phi_adv
            Jc, gc, _, _ = inner.engine.loss_and_gradient(inner.f0, inner.target, keep=inner.keep)
            for k in gc:
                grad[k] *= 1.0 - self.mix
                grad[k] += self.mix * gc[k]
            J = self.mix * Jc + (1.0 - self.mix) * J
        return J, grad
