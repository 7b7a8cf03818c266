"""E-MSA as Li et al. set it up (pdenet/network/emsa.py): the output layer's exact maximiser against a
numerical maximisation of its augmented Hamiltonian, mini-batches and the inner cap from the case file,
and cases/digits_emsa.toml's held-out accuracy (slow)."""
import numpy as np
import pytest
from scipy import optimize

import pdenet
from conftest import case_path
from pdenet.network.emsa import head_step


def test_head_step_is_the_maximiser_of_the_output_hamiltonian():
    rng = np.random.default_rng(3)
    S, N, M, h, rho = 12, 5, 3, 0.2, 0.7
    F = rng.standard_normal((S, N))
    W0, mu0 = rng.standard_normal((M, N)), rng.standard_normal(M)
    P = rng.standard_normal((S, M))
    P -= P.mean(axis=1, keepdims=True)          # softmax co-states: each row sums to zero
    O0 = h * F @ W0.T + mu0

    def neg(x):                                 # -H~_out(W, mu), the module docstring's formula
        W, mu = x[:M * N].reshape(M, N), x[M * N:]
        O = h * F @ W.T + mu
        val = np.mean(np.sum(P * O, axis=1)) - 0.5 * rho * np.mean(np.sum((O - O0) ** 2, axis=1)) \
            - 0.5 * rho * h * np.mean(np.sum((P @ (W - W0)) ** 2, axis=1))
        return -val

    x0 = np.concatenate([W0.ravel(), mu0])
    res = optimize.minimize(neg, x0, method="BFGS", options={"gtol": 1e-11})
    D, d = head_step(h, F, P, rho)
    np.testing.assert_allclose(W0 + D, res.x[:M * N].reshape(M, N), atol=2e-6)
    np.testing.assert_allclose(mu0 + d, res.x[M * N:], atol=2e-6)
    assert neg(np.concatenate([(W0 + D).ravel(), mu0 + d])) <= res.fun + 1e-12


def test_emsa_with_the_output_layer_and_minibatches_on_the_digits():
    sets = ["data.limit=300", "train.iterations=6", "train.batch_size=100", "train.eval_every=3",
            "train.inner_maxiter=2"]
    r = pdenet.run(case_path("digits_emsa.toml"), overrides=sets, write=False)
    t = r.train
    assert t["full_loss"][-1] < 0.6 * t["full_loss"][0], t["full_loss"]
    # msa cannot take the output layer (its Hamiltonian is linear in W, mu)
    with pytest.raises(pdenet.CaseError, match="rho > 0"):
        pdenet.run(case_path("digits_emsa.toml"), overrides=[*sets, 'train.method="msa"', "train.box_a=[-1, 1]",
                                                             "train.box_b=[-1, 1]"], write=False)


@pytest.mark.slow
def test_digits_emsa_reaches_95_percent_held_out():
    r = pdenet.run(case_path("digits_emsa.toml"), write=False)
    assert r.attrs["test_accuracy"] >= 0.95, r.attrs["test_accuracy"]


# -- the Tikhonov term: the PMP of the regularised loss ----------------------------------------------
@pytest.mark.parametrize("kernel, controls", [("dense", ("a", "b")), ("lowrank", ("a", "phi", "psi")),
                                              ("conv", ("a", "kappa"))])
def test_tikhonov_hamiltonian_gradient_is_minus_the_regularised_gradient(kernel, controls):
    """With (lambda/2) R(a, b) in J, D_theta H~_k(theta^k) = -D_theta_k J (the running cost makes the
    Hamiltonian's gradient the regularised one), for rho = 0 and rho > 0; and the gradient of H~_k
    away from theta^k passes a central-difference Taylor test (O(eps^2))."""
    from netfactory import make_net
    from pdenet.network.emsa import LayeredPMP
    from solvers.optim import flatten

    rng = np.random.default_rng(4)
    net, f0, target = make_net(rng, kernel=kernel, loss="softmax", activation="tanh", cells=(4,), steps=6,
                               intervals=3, samples=5, tikhonov=0.3)
    system = LayeredPMP(net, f0, target, controls=controls)
    J, grad = system.sweep()
    for k in range(3):
        F, R = system._interval_data(k)
        ref = system._reference(k, F, R)
        for rho in (0.0, 2.0):
            _, gH = system.interval_objective(k, rho, ref, F, R)
            for name in controls:
                np.testing.assert_allclose(gH[name], -grad[name][k], rtol=1e-10, atol=1e-14)
    # the Tikhonov part is not negligible: without it the gradients differ
    lam_part = max(float(np.abs(net.tikhonov * p).max()) for p in net.params.values())
    assert lam_part > 1e-3
    k = 1
    F, R = system._interval_data(k)
    ref = system._reference(k, F, R)
    for name in controls:
        net.params[name][k] += 0.1 * rng.standard_normal(net.params[name][k].shape)
    x = system._get(k)
    d = rng.standard_normal(x.shape)
    _, g = system.interval_objective(k, 0.7, ref, F, R)
    slope = flatten(g, controls) @ d
    errors = []
    for eps in (1e-3, 5e-4):
        system._set(k, x + eps * d)
        vp = system.interval_objective(k, 0.7, ref, F, R)[0]
        system._set(k, x - eps * d)
        vm = system.interval_objective(k, 0.7, ref, F, R)[0]
        errors.append(abs((vp - vm) / (2 * eps) - slope))
    assert errors[1] < 1e-6 * max(1.0, abs(slope)) and errors[1] < 0.3 * errors[0]


def test_emsa_with_tikhonov_on_the_digits_decreases_the_regularised_loss():
    r = pdenet.run(case_path("digits_emsa.toml"), overrides=["data.limit=200", "train.iterations=10",
                                                             "train.batch_size=0", "model.tikhonov=1e-3",
                                                             "train.rho=0.3",
                                                             "train.eval_every=10"], write=False)
    loss = r.train["loss"]                      # J with (lambda/2) R (E-MSA is not monotone: 2.31 ... 1.71)
    assert loss[-1] < 0.8 * loss[0], loss
