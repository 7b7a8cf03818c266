"""Sigma_D of the network model (pdenet.network.sgd_noise) against independent computations."""
import itertools
import os

import numpy as np
import pytest

from netfactory import make_net
from pdenet.network.sgd_noise import NoiseCovariance, batch_factor, per_sample_gradients

try:
    import torch
except ImportError:  # CI installs the test extra: there a missing oracle is a failure, not a skip
    if os.environ.get("CI"):
        raise
    torch = None


def _torch_per_sample(net, f0, target, activation, loss):
    """Per-sample gradients of the explicit-Euler ResNet by PyTorch autograd, one sample at a time."""
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}[activation]
    steps, K, tau, h = net.schedule.steps, net.schedule.intervals, net.schedule.dt, net.h
    rows = []
    for s in range(f0.shape[0]):
        p = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
        z = torch.tensor(f0[s:s + 1])
        for n in range(steps):
            k = n * K // steps
            z = z + tau * act(p["a"][k] - h * z @ p["b"][k].T)
        if loss == "l2":
            J = 0.5 * h * torch.sum((z - torch.tensor(target[s:s + 1])) ** 2)
        else:
            logits = h * z @ p["W"].T + p["mu"]
            J = torch.nn.functional.cross_entropy(logits, torch.tensor(target[s:s + 1]))
        J.backward()
        rows.append(np.concatenate([p[k].grad.numpy().ravel() for k in net.params]))
    return np.array(rows)


@pytest.mark.skipif(torch is None, reason="PyTorch is the oracle")
@pytest.mark.parametrize("loss,activation", [("l2", "tanh"), ("softmax", "sigmoid")])
def test_sigma_d_against_autograd_and_dense_eigh(loss, activation):
    rng = np.random.default_rng(7)
    net, f0, target = make_net(rng, stepper="euler", kernel="dense", loss=loss, activation=activation,
                               cells=(6,), steps=4, intervals=2, samples=9, t_end=1.0)
    G = per_sample_gradients(net, f0, target)
    Gt = _torch_per_sample(net, f0, target, activation, loss)
    assert np.linalg.norm(G - Gt) <= 1e-11 * np.linalg.norm(Gt)
    # the oracle covariance: dense, from its definition (1/S) sum g g^T - gbar gbar^T, numpy eigh
    S = Gt.shape[0]
    gbar = Gt.mean(axis=0)
    ref = Gt.T @ Gt / S - np.outer(gbar, gbar)
    ref_ev = np.linalg.eigh(ref)[0][::-1]
    cov = NoiseCovariance(G)
    k = 5
    for method in ("lanczos", "gram", "dense"):
        ev, _ = cov.top(k, method, tol=1e-14)
        assert np.max(np.abs(ev - ref_ev[:k]) / ref_ev[:k]) < 1e-8, method
    assert cov.trace() == pytest.approx(np.trace(ref), rel=1e-10)
    # rank: S samples give rank <= S - 1 (the centring); generic data reach it
    assert cov.rank(1e-10) == np.sum(ref_ev > 1e-10 * ref_ev[0]) == S - 1


def test_batch_factors_by_enumerating_every_batch():
    """Covariance of mini-batch mean gradients over all batches = factor * Sigma_D (both samplings)."""
    rng = np.random.default_rng(3)
    S, P, l = 6, 4, 3
    G = rng.standard_normal((S, P))
    sigma = NoiseCovariance(G, copy=True).dense()
    gbar = G.mean(axis=0)
    wo = [G[list(b)].mean(axis=0) - gbar for b in itertools.combinations(range(S), l)]
    cov_wo = sum(np.outer(d, d) for d in wo) / len(wo)
    w = [G[list(b)].mean(axis=0) - gbar for b in itertools.product(range(S), repeat=l)]
    cov_w = sum(np.outer(d, d) for d in w) / len(w)
    assert np.allclose(cov_wo, batch_factor(S, l, False) * sigma, rtol=1e-12, atol=1e-14)
    assert np.allclose(cov_w, batch_factor(S, l, True) * sigma, rtol=1e-12, atol=1e-14)
    assert batch_factor(S, S, False) == 0.0


@pytest.mark.parametrize("stepper,kernel,loss", [("rk4", "lowrank", "softmax"), ("cn", "convolution", "l2")])
def test_per_sample_gradients_sum_to_the_gradient(stepper, kernel, loss):
    """Every stepper: the mean of the per-sample rows is the network's batch gradient (no Tikhonov)."""
    rng = np.random.default_rng(11)
    net, f0, target = make_net(rng, stepper=stepper, kernel=kernel, loss=loss, cells=(8,), samples=5,
                               tikhonov=0.3)
    G = per_sample_gradients(net, f0, target)
    _, grad, _, _ = net.loss_and_gradient(f0, target, regularise=False)
    ref = np.concatenate([grad[k].ravel() for k in net.params])
    assert np.linalg.norm(G.mean(axis=0) - ref) <= 1e-12 * np.linalg.norm(ref)


def test_lanczos_matches_dense_on_a_medium_network():
    rng = np.random.default_rng(5)
    net, f0, target = make_net(rng, stepper="heun", kernel="dense", loss="softmax", cells=(20,), steps=4,
                               intervals=2, samples=60, t_end=1.0)     # P = 2*20 + 2*400 + 4*20 + 4 = 924
    cov = NoiseCovariance.of_network(net, f0, target)
    assert cov.P == 924
    k = 10
    lz, V = cov.top(k, "lanczos", tol=1e-12, vectors=True)
    de, _ = cov.top(k, "dense")
    assert np.max(np.abs(lz - de) / de) < 1e-9
    # eigenpair residuals of the operator
    R = np.column_stack([cov.matvec(V[:, i]) for i in range(k)]) - V * lz
    assert np.linalg.norm(R, axis=0).max() < 1e-8 * lz[0]
    assert cov.rank(1e-10) <= 59


def test_sgd_noise_table_writes_the_spectrum_along_training():
    """[sgd_noise] where = every: rows at k = 0, 2, 4 and the last (5); the final row equals a fresh
    computation at the written /controls (eigh of the S x S Gram matrix of the centred per-sample
    gradients, which has the nonzero spectrum of Sigma_D), and the rank is bounded by S - 1."""
    import pdenet
    from conftest import case_path

    over = ["data.limit=24", "train.iterations=5", "train.eval_every=5", "sgd_noise.every=2",
            "sgd_noise.eigenvalues=6", "model.intervals=1", "time.steps=1"]
    r = pdenet.run(case_path("digits_sgd_noise.toml"), overrides=over, write=False)
    np.testing.assert_array_equal(r.analysis["sgd_noise_iterations"], [0, 2, 4, 5])
    ev = r.analysis["sgd_noise_eigenvalues"]
    assert ev.shape == (4, 6) and np.all(np.diff(ev, axis=1) <= 0)
    assert r.attrs["sgd_noise_rank"] == r.analysis["sgd_noise_ranks"][-1] <= 23
    model = pdenet.validate(case_path("digits_sgd_noise.toml"), over)
    net = model.net
    for name, p in net.params.items():
        p[...] = r.controls[name]
    G = per_sample_gradients(net, model.inputs, model.targets)
    Gc = G - G.mean(axis=0)
    ref = np.linalg.eigvalsh(Gc @ Gc.T / 24)[::-1][:6]
    cov = NoiseCovariance(G)
    np.testing.assert_allclose(ev[-1], ref, rtol=1e-8)
    assert r.analysis["sgd_noise_trace"][-1] == pytest.approx(cov.trace(), rel=1e-12)
    assert r.attrs["sgd_noise_factor_with_replacement"] == pytest.approx(1 / 16)
    assert r.attrs["sgd_noise_factor_without_replacement"] == pytest.approx((24 - 16) / (16 * 23))


def test_sgd_noise_every_needs_training():
    import pdenet
    from conftest import case_path
    from pdenet.errors import CaseError

    with pytest.raises(CaseError, match="sgd_noise.where"):
        pdenet.validate(case_path("digits_sgd_noise.toml"), ["train.method=none"])
