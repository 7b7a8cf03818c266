"""Model-agnostic meta-learning (MAML) of the network PDE on a family of sine-regression tasks
(review §5, eqs. 58–59; Finn et al. 2017).

Tasks: tau = (A, phi), A ~ U[0.1, 5], phi ~ U[0, pi]; a sample is x ~ U[-5, 5] with target
A sin(x + phi).  The network reads x as the constant input field f(y, 0) = x / 5 on the label
mesh (a width-N residual network) and answers with a one-unit output layer
O = int W(z) f(z, T) dz + mu (``model.output``: kind = "classes", classes = 1, loss = "l2").

MAML (review eq. 58): the *inner loop* adapts the parameters to a task from K support samples by
N gradient steps,  theta_{j+1} = theta_j - alpha P grad L_tau^supp(theta_j),  theta_0 = theta,
where P (:func:`preconditioner`) makes the step the function-space one (array gradients carry
quadrature weights h, so one alpha would otherwise be 1/h too small for W and 1/h too large for
mu) and restricts the adaptation to the output layer (W, mu) by default (``inner``; the
features a, b are meta-learned by the outer loop through the second-order meta-gradient),
and the *outer loop* minimises the post-adaptation loss on fresh query samples,
min_theta E_tau L_tau^query(theta_N(theta)).  The meta-gradient (review eq. 59) is the
backward recursion

    g_N = grad L^query(theta_N),   g_j = (I - alpha H^supp(theta_j) P) g_{j+1},   meta-grad = g_0,

which the review reads as an integral (feedback) controller: the inner loop is a feedback law
that turns the task's error into a parameter correction, and the outer loop tunes the
controller's initial condition.  ``order = 2`` computes H^supp v by a central difference of
exact gradients (two adjoint solves per inner step, error O(eps^2)); ``order = 1`` is
first-order MAML (H dropped).  The outer step is Adam with learning rate ``lr``.

:func:`joint_baseline` trains the same network on the pooled tasks without adaptation (the
jointly trained baseline) and :func:`evaluate` measures, on held-out tasks, the query loss after
N adaptation steps from a given initialisation.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["SineTasks", "meta_gradient", "train_maml", "joint_baseline", "evaluate", "adapt"]


class SineTasks:
    """The sine-regression task family; inputs as constant fields on N cells."""

    def __init__(self, N, amplitude=(0.1, 5.0), phase=(0.0, math.pi), x_range=(-5.0, 5.0)):
        self.N, self.amplitude, self.phase, self.x_range = N, amplitude, phase, x_range

    def tasks(self, rng, n):
        return np.column_stack([rng.uniform(*self.amplitude, n), rng.uniform(*self.phase, n)])

    def samples(self, task, rng, n):
        x = rng.uniform(*self.x_range, n)
        f0 = np.repeat((x / self.x_range[1])[:, None], self.N, axis=1)
        return f0, (task[0] * np.sin(x + task[1]))[:, None]


def _get(net):
    return {k: v.copy() for k, v in net.params.items()}


def _set(net, theta):
    for k, v in net.params.items():
        v[...] = theta[k]


def _grad(net, theta, f0, t):
    _set(net, theta)
    J, g, _, _ = net.loss_and_gradient(f0, t)
    return J, {k: np.array(g[k]) for k in theta}


INNER = ("W", "mu")


def preconditioner(net, inner=INNER):
    """P of the inner step theta <- theta - alpha P grad L: the function-space (L^2(Y)) gradient,
    i.e. the array gradient divided by the quadrature weight of the parameter (W and a: h; the
    kernel's parameters: h^2; mu: 1), restricted to the ``inner`` parameters (0 elsewhere)."""
    h = net.h
    w = {"W": 1.0 / h, "mu": 1.0, "a": 1.0 / h}
    return {k: (w.get(k, 1.0 / h**2) if k in inner else 0.0) for k in net.params}


def adapt(net, theta, f0, t, alpha, steps, P=None):
    """The inner loop: the iterates theta_0..theta_steps of theta <- theta - alpha P grad L on
    (f0, t) (P: :func:`preconditioner`)."""
    P = preconditioner(net) if P is None else P
    path = [theta]
    for _ in range(steps):
        _, g = _grad(net, path[-1], f0, t)
        path.append({k: path[-1][k] - alpha * P[k] * g[k] for k in theta})
    return path


def _dot(a, b):
    return sum(float(np.sum(a[k] * b[k])) for k in a)


def meta_gradient(net, theta, support, query, alpha, steps, order=2, eps=1e-4, P=None):
    """(post-adaptation query loss, its gradient with respect to theta) for one task:
    g_j = g_{j+1} - alpha H(theta_j) P g_{j+1} (H P g by a central difference of gradients)."""
    P = preconditioner(net) if P is None else P
    path = adapt(net, theta, *support, alpha, steps, P)
    J, g = _grad(net, path[-1], *query)
    if order == 2:
        for th in reversed(path[:-1]):
            v = {k: P[k] * g[k] for k in g}
            nv = math.sqrt(_dot(v, v))
            if nv == 0.0:
                break
            e = eps / nv
            _, gp = _grad(net, {k: th[k] + e * v[k] for k in th}, *support)
            _, gm = _grad(net, {k: th[k] - e * v[k] for k in th}, *support)
            g = {k: g[k] - alpha * (gp[k] - gm[k]) / (2.0 * e) for k in g}
    return J, g


class _Adam:
    def __init__(self, theta, lr, b1=0.9, b2=0.999):
        self.lr, self.b1, self.b2, self.k = lr, b1, b2, 0
        self.m = {k: np.zeros_like(v) for k, v in theta.items()}
        self.v = {k: np.zeros_like(v) for k, v in theta.items()}

    def step(self, theta, g):
        self.k += 1
        out = {}
        for k in theta:
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g[k]
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g[k] ** 2
            mh = self.m[k] / (1 - self.b1 ** self.k)
            vh = self.v[k] / (1 - self.b2 ** self.k)
            out[k] = theta[k] - self.lr * mh / (np.sqrt(vh) + 1e-8)
        return out


def _outer(net, iterations, lr, meta_batch, shots, queries, seed, task_grad, progress=None):
    fam = SineTasks(net.N)
    rng = np.random.default_rng(seed)
    theta = _get(net)
    opt = _Adam(theta, lr)
    losses = np.empty(iterations)
    for it in range(iterations):
        total, gsum = 0.0, {k: np.zeros_like(v) for k, v in theta.items()}
        for task in fam.tasks(rng, meta_batch):
            support = fam.samples(task, rng, shots)
            query = fam.samples(task, rng, queries)
            J, g = task_grad(theta, support, query)
            total += J
            for k in gsum:
                gsum[k] += g[k] / meta_batch
        losses[it] = total / meta_batch
        theta = opt.step(theta, gsum)
        if progress is not None:
            progress(1)
    _set(net, theta)
    return losses


def train_maml(net, iterations=1000, lr=1e-3, meta_batch=10, shots=10, queries=10, inner_lr=0.01,
               inner_steps=1, order=2, seed=0, progress=None):
    """Meta-train ``net`` in place; returns the post-adaptation query loss per iteration."""
    return _outer(net, iterations, lr, meta_batch, shots, queries, seed,
                  lambda th, s, q: meta_gradient(net, th, s, q, inner_lr, inner_steps, order), progress)


def joint_baseline(net, iterations=1000, lr=1e-3, meta_batch=10, shots=10, queries=10, seed=0, progress=None):
    """The jointly trained baseline: the same outer loop on the pooled tasks, no adaptation."""
    return _outer(net, iterations, lr, meta_batch, shots, queries, seed,
                  lambda th, s, q: _grad(net, th, *q), progress)


def evaluate(net, tasks=100, shots=10, queries=100, inner_lr=0.5, inner_steps=1, seed=12345, per_task=False):
    """Mean and standard error over ``tasks`` held-out tasks of the query loss after
    ``inner_steps`` adaptation steps from the network's current parameters (restored after);
    ``per_task``: the array of per-task losses instead (the same tasks for every network, so
    two initialisations compare pairwise)."""
    fam = SineTasks(net.N)
    rng = np.random.default_rng(seed)
    theta = _get(net)
    out = []
    for task in fam.tasks(rng, tasks):
        support = fam.samples(task, rng, shots)
        query = fam.samples(task, rng, queries)
        path = adapt(net, theta, *support, inner_lr, inner_steps)
        _set(net, path[-1])
        out.append(net.loss(*query)[0])
    _set(net, theta)
    out = np.array(out)
    if per_task:
        return out
    return float(out.mean()), float(out.std(ddof=1) / math.sqrt(out.size))
