"""Small networks for the tests, built directly from the Python API."""
import numpy as np

from pdenet.mesh import Mesh
from pdenet.network import ConvolutionOperator, DenseOperator, Head, LowRankOperator, NetworkPDE
from solvers import Schedule, make_stepper


def make_net(rng, stepper="euler", kernel="dense", loss="l2", activation="tanh", cells=(10,), steps=6,
             intervals=3, samples=3, t_end=0.6, tikhonov=0.0, classes=4, scale=1.0):
    mesh = Mesh([0.0] * len(cells), [1.0] * len(cells), list(cells))
    N, h = mesh.size, mesh.cell_volume
    K = intervals
    a = 0.5 * rng.standard_normal((K, N))
    std = scale / (h * np.sqrt(N))
    if kernel == "dense":
        op = DenseOperator(std * rng.standard_normal((K, N, N)))
    elif kernel == "lowrank":
        s = np.sqrt(std)
        op = LowRankOperator(s * rng.standard_normal((K, 2, N)), s * rng.standard_normal((K, 2, N)))
    else:
        op = ConvolutionOperator(std * rng.standard_normal((K,) + tuple(2 * n - 1 for n in cells)), cells)
    if loss == "l2":
        head = Head("identity", "l2", h, N)
        target = rng.standard_normal((samples, N))
    elif loss == "l2-field":
        head = Head("field", "l2", h, N, std * rng.standard_normal((N, N)), rng.standard_normal(N),
                    transform="logistic")
        target = rng.random((samples, N))
    elif loss == "logistic":
        head = Head("classes", "logistic", h, N, std * rng.standard_normal((1, N)), rng.standard_normal(1))
        target = rng.integers(0, 2, (samples, 1)).astype(float)
    else:
        head = Head("classes", "softmax", h, N, std * rng.standard_normal((classes, N)),
                    rng.standard_normal(classes))
        target = rng.integers(0, classes, samples)
    sched = Schedule(steps, t_end / steps, K)
    net = NetworkPDE(mesh, activation, a, op, head, sched, make_stepper(stepper), tikhonov=tikhonov)
    f0 = rng.standard_normal((samples, N))
    return net, f0, target


def taylor_remainders(net, f0, target, rng, eps0=1e-2, halvings=4, keep="all"):
    """|J(p + eps d) - J(p) - eps <grad J, d>| for eps = eps0 / 2^i, all parameters at once."""
    J, grad, _, _ = net.loss_and_gradient(f0, target, keep=keep)
    params = net.params
    base = {k: v.copy() for k, v in params.items()}
    direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    slope = sum(float(np.sum(grad[k] * direction[k])) for k in params)
    rem = []
    try:
        for i in range(halvings + 1):
            eps = eps0 / 2 ** i
            for k in params:
                params[k][...] = base[k] + eps * direction[k]
            Je, _ = net.loss(f0, target)
            rem.append(abs(Je - J - eps * slope))
    finally:
        for k in params:
            params[k][...] = base[k]
    return np.array(rem)
