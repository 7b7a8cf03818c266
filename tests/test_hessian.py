"""Hessian-vector products of the network loss by the second-order adjoint (pdenet.network.hessian)."""
import os

import numpy as np
import pytest
from scipy import integrate

from netfactory import make_net
from pdenet.network.hessian import hessian_operator, hvp, slq_density, slq_nodes, spectrum
from pdenet.network.sgd_noise import flatten

try:
    import torch
except ImportError:  # CI installs the test extra
    if os.environ.get("CI"):
        raise
    torch = None


def _direction(net, rng):
    return {k: rng.standard_normal(v.shape) for k, v in net.params.items()}


@pytest.mark.parametrize("stepper,loss,activation", [("euler", "l2", "tanh"), ("euler", "softmax", "sigmoid"),
                                                     ("heun", "softmax", "arctan"), ("rk4", "l2", "sigmoid"),
                                                     ("rk4", "softmax", "tanh"), ("beuler", "softmax", "tanh"),
                                                     ("cn", "l2", "sigmoid")])
@pytest.mark.parametrize("kernel", ["dense", "convolution", "lowrank"])
def test_gradient_of_the_second_order_adjoint_is_the_exact_gradient_and_taylor_remainder_is_order_two(
        stepper, loss, activation, kernel):
    rng = np.random.default_rng(4)
    net, f0, target = make_net(rng, stepper=stepper, kernel=kernel, loss=loss, activation=activation,
                               cells=(6,), steps=6, intervals=3, samples=5, tikhonov=0.2)
    v = _direction(net, rng)
    g, Hv = hvp(net, f0, target, v)
    _, grad, _, _ = net.loss_and_gradient(f0, target)
    names = list(net.params)
    tol = 1e-9 if stepper in ("beuler", "cn") else 1e-12     # implicit: Newton/GMRES tolerances
    assert np.linalg.norm(flatten(g, names) - flatten(grad, names)) < tol * np.linalg.norm(flatten(grad, names))
    base = {k: p.copy() for k, p in net.params.items()}
    rem = []
    for i in range(5):
        eps = 1e-2 / 2 ** i
        for k in names:
            net.params[k][...] = base[k] + eps * v[k]
        _, ge, _, _ = net.loss_and_gradient(f0, target)
        rem.append(np.linalg.norm(flatten(ge, names) - flatten(grad, names) - eps * flatten(Hv, names)))
    for k in names:
        net.params[k][...] = base[k]
    orders = np.log2(np.array(rem[:-1]) / rem[1:])
    assert np.all(orders > 1.9), orders


@pytest.mark.skipif(torch is None, reason="PyTorch is the oracle")
def test_hvp_equals_pytorch_double_backward():
    rng = np.random.default_rng(9)
    net, f0, target = make_net(rng, stepper="euler", kernel="dense", loss="softmax", activation="tanh",
                               cells=(5,), steps=4, intervals=2, samples=4)
    v = _direction(net, rng)
    _, Hv = hvp(net, f0, target, v)
    names = list(net.params)
    tp = [torch.tensor(net.params[k], requires_grad=True) for k in names]

    def loss(*ps):
        p = dict(zip(names, ps))
        z = torch.tensor(f0)
        for n in range(net.schedule.steps):
            k = net.schedule.interval(n)
            z = z + net.schedule.dt * torch.tanh(p["a"][k] - net.h * z @ p["b"][k].T)
        logits = net.h * z @ p["W"].T + p["mu"]
        return torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction="mean")
    _, ref = torch.autograd.functional.hvp(loss, tuple(tp), tuple(torch.tensor(v[k]) for k in names))
    ref = np.concatenate([r.numpy().ravel() for r in ref])
    assert np.linalg.norm(flatten(Hv, names) - ref) < 1e-10 * np.linalg.norm(ref)


def test_linear_activation_hessian_in_the_bias_is_the_closed_form():
    """sigma = identity, L2 loss: f_T is affine in a, so the a-block of H is (h/S) sum_s J^T J with
    J = df_T/da the (N, K N) matrix of the linear Euler recursion, built column by column here."""
    rng = np.random.default_rng(2)
    net, f0, target = make_net(rng, stepper="euler", kernel="dense", loss="l2", activation="identity",
                               cells=(4,), steps=4, intervals=2, samples=3)
    K, N, h, tau = 2, 4, net.h, net.schedule.dt
    J = np.zeros((N, K * N))
    for col in range(K * N):
        k, i = divmod(col, N)
        df = np.zeros(N)
        for n in range(net.schedule.steps):
            e = np.zeros(N)
            if net.schedule.interval(n) == k:
                e[i] = 1.0
            df = df + tau * (e - h * net.operator.b[net.schedule.interval(n)] @ df)
        J[:, col] = df
    closed = h * J.T @ J          # (h/S) sum over S identical Jacobians
    names = list(net.params)
    Ha = np.zeros((K * N, K * N))
    for col in range(K * N):
        v = {k: np.zeros_like(p) for k, p in net.params.items()}
        v["a"].reshape(-1)[col] = 1.0
        _, Hv = hvp(net, f0, target, v)
        Ha[:, col] = Hv["a"].ravel()
    assert np.allclose(Ha, closed, rtol=1e-12, atol=1e-15)


def test_lanczos_extremes_and_slq_density_against_dense_hessian():
    rng = np.random.default_rng(6)
    net, f0, target = make_net(rng, stepper="euler", kernel="dense", loss="softmax", activation="tanh",
                               cells=(5,), steps=3, intervals=1, samples=6)
    op = hessian_operator(net, f0, target)
    P = op.shape[0]
    H = np.column_stack([op.matvec(e) for e in np.eye(P)])
    assert np.allclose(H, H.T, atol=1e-12 * np.abs(H).max())
    ev = np.linalg.eigvalsh(H)
    top, bottom = spectrum(net, f0, target, k=3, tol=1e-12)
    assert np.allclose(top, ev[::-1][:3], rtol=1e-8) and np.allclose(bottom, ev[:3], atol=1e-10 * ev[-1])
    # a single probe v: Gauss quadrature of its Lanczos matrix reproduces v^T H^j v / |v|^2 exactly
    # for j < 2 (steps); with 12 steps, j <= 4 here
    nodes, w = slq_nodes(op.matvec, P, probes=1, steps=12, seed=1)
    v = np.random.default_rng(1).choice([-1.0, 1.0], P)
    for j in (1, 2, 3, 4):
        ref = v @ np.linalg.matrix_power(H, j) @ v / P
        assert w @ nodes ** j == pytest.approx(ref, rel=1e-8), j
    nodes, w = slq_nodes(op.matvec, P, probes=20, steps=30, seed=2)
    grid = np.linspace(ev[0] - 1, ev[-1] + 1, 2001)
    dens = slq_density(nodes, w, grid, 0.05)
    assert integrate.trapezoid(dens, grid) == pytest.approx(1.0, rel=1e-6)


def test_unsupported_head_is_refused():
    net, f0, target = make_net(np.random.default_rng(0), loss="l2-field")
    with pytest.raises(NotImplementedError, match="heads"):
        hvp(net, f0, target, _direction(net, np.random.default_rng(1)))


def test_hessian_table_writes_extremes_density_and_fraction():
    import pdenet
    from conftest import case_path

    over = ["data.limit=24", "train.iterations=5", "train.eval_every=5", "sgd_noise.where=none",
            "model.intervals=1", "time.steps=1", "hessian.eigenvalues=3", "hessian.probes=2",
            "hessian.steps=20"]
    r = pdenet.run(case_path("digits_sgd_noise.toml"), overrides=over, write=False)
    top, bottom = r.analysis["hessian_eigenvalues"], r.analysis["hessian_eigenvalues_bottom"]
    assert top.shape == bottom.shape == (3,) and np.all(np.diff(top) <= 0) and np.all(np.diff(bottom) >= 0)
    assert r.attrs["hessian_max_eigenvalue"] == top[0] > 0
    grid, dens = r.analysis["hessian_density_grid"], r.analysis["hessian_density"]
    assert integrate.trapezoid(dens, grid) == pytest.approx(1.0, rel=1e-3)
    assert 0.0 <= r.attrs["hessian_fraction_near_zero"] <= 1.0
    # the largest eigenvalue bounds every Rayleigh quotient, and power iteration approaches it
    model = pdenet.validate(case_path("digits_sgd_noise.toml"), over)
    for name, p in model.net.params.items():
        p[...] = r.controls[name]
    op = hessian_operator(model.net, model.inputs, model.targets)
    x = np.random.default_rng(0).standard_normal(op.shape[0])
    for _ in range(30):
        x = op.matvec(x)
        x /= np.linalg.norm(x)
    assert 0.5 * top[0] < x @ op.matvec(x) <= top[0] * (1 + 1e-8)


def test_hessian_table_refuses_a_non_smooth_activation():
    import pdenet
    from conftest import case_path
    from pdenet.errors import CaseError

    with pytest.raises(CaseError, match="hessian.eigenvalues"):
        pdenet.validate(case_path("digits_sgd_noise.toml"), ["hessian.eigenvalues=3", "model.activation=relu"])


@pytest.mark.skipif(torch is None, reason="PyTorch is the oracle")
def test_rk4_hvp_equals_pytorch_double_backward():
    rng = np.random.default_rng(12)
    net, f0, target = make_net(rng, stepper="rk4", kernel="dense", loss="l2", activation="tanh",
                               cells=(5,), steps=3, intervals=3, samples=4)
    v = _direction(net, rng)
    _, Hv = hvp(net, f0, target, v)
    names = list(net.params)
    tp = [torch.tensor(net.params[k], requires_grad=True) for k in names]
    dt, h = net.schedule.dt, net.h

    def loss(a, b):
        z = torch.tensor(f0)
        for n in range(net.schedule.steps):
            k = net.schedule.interval(n)
            F = lambda y: torch.tanh(a[k] - h * y @ b[k].T)     # noqa: E731
            k1 = F(z)
            k2 = F(z + 0.5 * dt * k1)
            k3 = F(z + 0.5 * dt * k2)
            k4 = F(z + dt * k3)
            z = z + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        return 0.5 * h * torch.sum((z - torch.tensor(target)) ** 2) / z.shape[0]
    _, ref = torch.autograd.functional.hvp(loss, tuple(tp), tuple(torch.tensor(v[k]) for k in names))
    ref = np.concatenate([r.numpy().ravel() for r in ref])
    assert np.linalg.norm(flatten(Hv, names) - ref) < 1e-10 * np.linalg.norm(ref)
