"""Training drivers (solvers.optim) and the Pontryagin pieces (pdenet.network.pmp).

Liu & Markowich Sect. 4.2 (Hamiltonian, bang-bang 4.10), Sect. 5 (Algorithm 1 PAM,
Algorithm 2 MSA) and the extended MSA of Li, Chen, Tai & E (2018).
"""
import itertools

import numpy as np
import pytest

from netfactory import make_net
from pdenet.mesh import Mesh
from pdenet.network import DenseOperator, Head, NetworkPDE
from pdenet.network.objective import NetworkObjective, pam_groups
from pdenet.network.pmp import NetworkPMP, bang_bang, trajectory
from solvers import Schedule, make_stepper
from solvers.optim import adam, emsa, flatten, gd, msa, pam

import reference


# -- the one-cell toy f_t = a, a in [-1, 1], f(0) = 0, J = 1/2 (f(1) - 1/2)^2 ---------------------
def toy(steps, intervals):
    mesh = Mesh([0.0], [1.0], [1])                        # one cell, h = 1
    net = NetworkPDE(mesh, "identity", np.zeros((intervals, 1)), DenseOperator(np.zeros((intervals, 1, 1))),
                     Head("identity", "l2", mesh.cell_volume, 1), Schedule(steps, 1.0 / steps, intervals),
                     make_stepper("euler"))
    return net, np.zeros((1, 1)), np.full((1, 1), 0.5)


@pytest.mark.parametrize("steps,intervals", [(1, 1), (4, 4), (8, 2)])
def test_msa_cycles_and_emsa_converges_on_the_toy(steps, intervals):
    net, f0, target = toy(steps, intervals)
    hist = msa(NetworkPMP(net, f0, target, box={"a": (-1.0, 1.0)}), 7)
    # a = 0 -> r* = 1/2 > 0 -> a = +1 (J = 1/8) -> r* = -1/2 -> a = -1 (J = 9/8) -> r* = 3/2 -> a = +1 ...
    plus, minus = reference.ref("training", "toy_msa_losses").value
    np.testing.assert_allclose(hist["loss"], [plus, plus, minus, plus, minus, plus, minus, plus],
                               rtol=0, atol=1e-14)
    np.testing.assert_array_equal(net.a, np.ones_like(net.a))
    # int H dt at theta^k: r* a = 0, (-1/2)(+1), (3/2)(-1), ...; maximised: |r*| of the previous sweep
    np.testing.assert_allclose(hist["hamiltonian"], [0.0] + [-0.5, -1.5] * 3 + [-0.5], atol=1e-14)
    np.testing.assert_allclose(hist["hamiltonian_max"][1:], [0.5, 0.5] + [1.5, 0.5] * 2 + [1.5], atol=1e-14)

    net, f0, target = toy(steps, intervals)
    hist = emsa(NetworkPMP(net, f0, target, box={"a": (-1.0, 1.0)}), 4, rho=1.0)
    # H~ = r* a - (a - a^k)^2 / 2 is maximised by a = a^k + r* = 1/2 on every interval
    assert hist["loss"][0] == pytest.approx(plus)
    assert np.all(hist["loss"][1:] < 1e-24)
    np.testing.assert_allclose(net.a, 0.5, atol=1e-12)

    net, f0, target = toy(steps, intervals)
    contraction = reference.ref("training", "toy_emsa_contraction")
    hist = emsa(NetworkPMP(net, f0, target, box={"a": (-1.0, 1.0)}), 12, rho=contraction["rho"])  # rho = 4
    # a^{k+1} - 1/2 = (3/4)(a^k - 1/2): monotone, geometric
    assert np.all(np.diff(hist["loss"]) < 0)
    np.testing.assert_allclose(hist["loss"][1:] / hist["loss"][:-1], contraction.value, rtol=contraction.tolerance)


def test_costate_convention_and_hamiltonian_gradient_is_minus_the_loss_gradient():
    """r*(T) = f~ - f(T) for the identity head; D_theta H_k(theta^k) = -D_theta_k J (review eq. 18)."""
    rng = np.random.default_rng(3)
    net, f0, target = make_net(rng, kernel="dense", loss="l2", activation="tanh", cells=(5,), steps=6,
                               intervals=3, samples=4)
    J, grad, _, f, r = trajectory(net, f0, target)
    np.testing.assert_allclose(r[-1], target - f[-1], rtol=1e-13, atol=1e-13)
    for kernel, controls in [("dense", ("a", "b")), ("lowrank", ("a", "phi", "psi")), ("conv", ("a", "kappa"))]:
        rng = np.random.default_rng(4)
        net, f0, target = make_net(rng, kernel=kernel, loss="softmax", activation="tanh", cells=(4,),
                                   steps=6, intervals=3, samples=5)
        system = NetworkPMP(net, f0, target, controls=controls)
        J, grad = system.sweep()
        for k in range(3):
            for rho in (0.0, 2.0):
                F, R = system._interval_data(k)
                ref = system._reference(k, F, R)
                _, gH = system.interval_objective(k, rho, ref, F, R)
                for name in controls:
                    np.testing.assert_allclose(gH[name], -grad[name][k], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kernel,controls", [("dense", ("a", "b")), ("lowrank", ("a", "phi", "psi")),
                                             ("conv", ("a", "kappa"))])
def test_augmented_hamiltonian_gradient_matches_central_differences(kernel, controls):
    rng = np.random.default_rng(1)
    net, f0, target = make_net(rng, kernel=kernel, activation="tanh", cells=(4,), steps=4, intervals=2,
                               samples=3)
    system = NetworkPMP(net, f0, target, controls=controls)
    system.sweep()
    k = 1
    F, R = system._interval_data(k)
    ref = system._reference(k, F, R)
    for name in controls:                   # move away from theta^k so the penalties are active
        net.params[name][k] += 0.1 * rng.standard_normal(net.params[name][k].shape)
    x = system._get(k)
    d = rng.standard_normal(x.shape)
    for rho in (0.0, 0.7):
        _, g = system.interval_objective(k, rho, ref, F, R)
        slope = flatten(g, controls) @ d
        errors = []
        for eps in (1e-3, 5e-4):
            system._set(k, x + eps * d)
            vp = system.interval_objective(k, rho, ref, F, R)[0]
            system._set(k, x - eps * d)
            vm = system.interval_objective(k, rho, ref, F, R)[0]
            errors.append(abs((vp - vm) / (2 * eps) - slope))
        system._set(k, x)
        assert errors[1] < 1e-6 * max(1.0, abs(slope))
        assert errors[1] < 0.3 * errors[0]           # O(eps^2): the gradient is exact


# -- bang-bang maximiser versus brute force -----------------------------------------------------
def _H_one_row(act, a, b, f, r, h):
    """h sum_i sigma(a_i - h sum_j b_ij f_j) r_i for a batch of (a (P, N), b (P, N, N))."""
    u = a - h * np.einsum("pij,j->pi", b, f)
    return h * np.sum(act(u) * r, axis=1)


def test_bang_bang_one_sample_equals_brute_force_over_the_box():
    rng = np.random.default_rng(7)
    net, f0, target = make_net(rng, kernel="dense", activation="tanh", cells=(2,), steps=2, intervals=2,
                               samples=1)
    box = {"a": (-1.0, 1.0), "b": (-2.0, 1.5)}
    system = NetworkPMP(net, f0, target, controls=("a", "b"), box=box)
    system.sweep()
    h = net.h
    for k in range(2):
        F, R = system._interval_data(k)
        f, r = F[0], R[0]
        assert np.all(r != 0) and np.all(f != 0)
        Hk = system.maximise_interval(k)
        H_ours = _H_one_row(net.activation, net.a[k][None], net.operator.b[k][None], f, r, h)[0]
        assert Hk == pytest.approx(net.schedule.dt * H_ours, rel=1e-13)
        # vertices of the 6-dimensional box (a1, a2, b11, b12, b21, b22)
        lows = np.array([-1.0] * 2 + [-2.0] * 4)
        highs = np.array([1.0] * 2 + [1.5] * 4)
        V = np.array(list(itertools.product(*zip(lows, highs))))
        HV = _H_one_row(net.activation, V[:, :2], V[:, 2:].reshape(-1, 2, 2), f, r, h)
        best = V[np.argmax(HV)]
        np.testing.assert_array_equal(np.concatenate([net.a[k], net.operator.b[k].ravel()]), best)
        # dense grid, 9 points per dimension (531441 controls)
        axes = [np.linspace(lo, hi, 9) for lo, hi in zip(lows, highs)]
        G = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 6)
        HG = _H_one_row(net.activation, G[:, :2], G[:, 2:].reshape(-1, 2, 2), f, r, h)
        assert H_ours >= HG.max() - 1e-14
        assert H_ours == pytest.approx(max(HG.max(), HV.max()), rel=1e-14)


def test_bang_bang_formula_signs():
    """(4.10): a = a+ where r > 0, a- where r < 0; b = b- where r f > 0, b+ where r f < 0; keep on ties."""
    r = np.array([1.0, -2.0, 0.0])
    f = np.array([0.5, -1.0, 0.0])
    a, b = bang_bang(r, f, np.array([0.1, 0.2, 0.3]), (-1.0, 2.0), np.full((3, 3), 0.7), (-3.0, 4.0))
    np.testing.assert_array_equal(a, [2.0, -1.0, 0.3])
    np.testing.assert_array_equal(b, [[-3.0, 4.0, 0.7], [4.0, -3.0, 0.7], [0.7, 0.7, 0.7]])


@pytest.mark.parametrize("activation", ["tanh", "identity", "relu"])
def test_many_samples_a_maximiser_equals_brute_force(activation):
    rng = np.random.default_rng(11)
    net, f0, target = make_net(rng, kernel="dense", activation=activation, cells=(2,), steps=4,
                               intervals=2, samples=6)
    lo, hi = np.array([-1.0, -0.5]), np.array([1.0, 2.0])
    system = NetworkPMP(net, f0, target, controls=("a",), box={"a": (lo, hi)})
    system.sweep()
    h, dt, S = net.h, net.schedule.dt, f0.shape[0]
    g1, g2 = np.linspace(lo[0], hi[0], 801), np.linspace(lo[1], hi[1], 801)
    A = np.stack(np.meshgrid(g1, g2, indexing="ij"), axis=-1).reshape(-1, 2)
    for k in range(2):
        F, R = system._interval_data(k)                 # 2 steps x 6 samples = 12 rows
        C = h * F @ net.operator.b[k].T                  # B_k f for every row
        def H(a_batch):
            u = a_batch[:, None, :] - C[None]
            return dt * h / S * np.sum(net.activation(u) * R[None], axis=(1, 2))
        Hk = system.maximise_interval(k)
        assert Hk == pytest.approx(H(net.a[k][None])[0], rel=1e-12)
        HA = H(A)
        assert Hk >= HA.max() - 1e-12 * abs(HA.max())
        if activation == "tanh":                          # unique maximiser: located to the grid spacing
            spacing = (hi - lo) / 800
            assert np.all(np.abs(net.a[k] - A[np.argmax(HA)]) <= 2 * spacing)


# -- PAM, gradient descent, Adam --------------------------------------------------------------
CLASSIFIER = dict(activation="tanh", loss="softmax", cells=(6,), steps=4, intervals=2, samples=12, classes=3)


def classifier(seed=0):
    net, f0, target = make_net(np.random.default_rng(seed), **CLASSIFIER)
    return net, NetworkObjective(net, f0, target)


@pytest.mark.parametrize("tau", [0.1, 10.0, 100.0])
def test_pam_sufficient_decrease_for_every_tau_where_gd_with_step_tau_diverges(tau):
    net, obj = classifier()
    snaps = [{n: p.copy() for n, p in net.params.items()}]
    hist = pam(obj, 5, tau, pam_groups(net),
               callback=lambda k, info: snaps.append({n: p.copy() for n, p in net.params.items()}))
    snaps = snaps[1:]                                     # row 0 is the start again
    assert len(snaps) == 6 and np.all(hist["decrease_ok"] == 1.0)
    for k in range(5):                                     # J(x^{k+1}) <= J(x^k) - |dx|^2 / 2 tau, recomputed
        moved = sum(np.sum((snaps[k + 1][n] - snaps[k][n]) ** 2) for n in snaps[k])
        assert moved > 0
        assert hist["loss"][k + 1] <= hist["loss"][k] - moved / (2 * tau) + 1e-12
        assert hist["slack"][k + 1] == pytest.approx(hist["loss"][k] - moved / (2 * tau) - hist["loss"][k + 1],
                                                     rel=1e-9, abs=1e-13)
    for k, s in enumerate(snaps):                          # the recorded losses are those of the iterates
        for n, p in net.params.items():
            p[...] = s[n]
        assert obj.loss() == pytest.approx(hist["loss"][k], rel=1e-12)
    assert np.all(hist["inner_residual"] <= 1e-5)

    net, obj = classifier()
    ghist = gd(obj, 5, tau)
    if tau >= 10.0:                                        # plain GD with step tau: J goes up
        assert ghist["loss"][-1] > ghist["loss"][0]
        assert np.any(np.diff(ghist["loss"]) > 0)
        assert hist["loss"][-1] < 0.8 * hist["loss"][0]
    else:                                                  # small tau: both decrease, alike
        assert np.all(np.diff(ghist["loss"]) < 0)
        assert hist["loss"][-1] == pytest.approx(ghist["loss"][-1], rel=1e-2)


def test_pam_rejects_overlapping_groups_and_bad_tau():
    net, obj = classifier()
    with pytest.raises(ValueError):
        pam(obj, 1, 1.0, [["a"], ["a", "b"]])
    with pytest.raises(ValueError):
        pam(obj, 1, 0.0, pam_groups(net))


@pytest.mark.parametrize("method", ["gd", "adam", "pam"])
def test_first_order_drivers_decrease_the_loss_and_stay_in_the_box(method):
    net, obj = classifier(seed=2)
    box = {"a": (-0.3, 0.3), "b": (-0.5 * np.ones((6, 6)), 0.5 * np.ones((6, 6)))}
    assert np.abs(net.a).max() > 0.3                        # the start violates the box
    seen = []

    def check(k, info):
        assert np.all(np.abs(net.a) <= 0.3) and np.all(np.abs(net.operator.b) <= 0.5)
        seen.append(info)

    if method == "gd":
        hist = gd(obj, 30, 1.0, box=box, callback=check)
    elif method == "adam":
        hist = adam(obj, 30, 0.05, box=box, callback=check)
    else:
        hist = pam(obj, 4, 10.0, pam_groups(net), box=box, callback=check)
    n = len(hist["loss"])
    assert len(seen) == n and {"loss", "grad_norm", "step", "accuracy"} <= set(hist)
    assert hist["loss"][-1] < 0.85 * hist["loss"][0]
    assert hist["accuracy"][-1] > hist["accuracy"][0]
    assert np.all(hist["step"][1:] > 0) and hist["step"][0] == 0
    assert np.all(np.isfinite(hist["grad_norm"]))


def test_callback_stops_and_unboxed_parameters_are_untouched_by_projection():
    net, obj = classifier()
    W0 = net.head.W.copy()
    hist = gd(obj, 50, 0.5, box={"a": (-0.1, 0.1)}, callback=lambda k, info: k == 3)
    assert len(hist["loss"]) == 4
    assert np.abs(net.a).max() <= 0.1
    assert not np.array_equal(net.head.W, W0)               # W moved freely
    with pytest.raises(ValueError):
        gd(obj, 1, 0.1, box={"nope": (0, 1)})
