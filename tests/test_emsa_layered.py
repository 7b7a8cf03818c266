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
