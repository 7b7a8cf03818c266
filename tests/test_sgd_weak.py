"""Weak order 1 of the SDE approximation of SGD (thesis Theorem 6.5), pdenet.sgd.weak."""
import numpy as np
import pytest

from pdenet.sgd.problems import LeastSquares, batches
from pdenet.sgd.weak import BatchMoments, observed_orders, order_table, sde_moments, sgd_moments, weak_errors


def _problem():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, 8)
    return LeastSquares(x, 2.0 * x + 0.5 * rng.standard_normal(8))


@pytest.mark.parametrize("replacement", [True, False])
def test_weak_order_one_over_five_halvings(replacement):
    etas = [0.1 / 2 ** i for i in range(6)]
    err = weak_errors(_problem(), 2, etas, T=2.0, theta0=-1.0, replacement=replacement)
    for col in (0, 1):                                  # phi = theta, theta^2
        orders = observed_orders(etas, err[:, col])
        assert np.all(np.abs(orders - 1.0) < 0.05), orders
    assert "order" in order_table(etas, err[:, 1])


def test_exact_moments_against_monte_carlo_sgd_and_sde():
    """The two moment recursions against independent simulations: SGD chains with sampled batches,
    and Euler-Maruyama paths of the SDE (dt = eta / 50), at eta = 0.1 where they differ."""
    prob, eta, T, theta0 = _problem(), 0.1, 2.0, -1.0
    bm = BatchMoments(prob, 2, True)
    rng = np.random.default_rng(1)
    chains = 40_000
    th = np.full(chains, theta0)
    for _ in range(int(T / eta)):
        idx = rng.integers(0, prob.N, (chains, 2))
        th = th - eta * prob.batch_grad(th[:, None], idx)[:, 0]
    m, s = sgd_moments(bm, eta, int(T / eta), theta0)
    assert abs(th.mean() - m) < 4 * th.std() / np.sqrt(chains)
    assert abs((th ** 2).mean() - s) < 4 * (th ** 2).std() / np.sqrt(chains)
    X, dt = np.full(chains, theta0), eta / 50
    for _ in range(int(round(T / dt))):
        X = X - dt * (bm.EA * X - bm.EC) + np.sqrt(eta * np.maximum(bm.sigma(X), 0) * dt) * rng.standard_normal(chains)
    M, S = sde_moments(bm, eta, T, theta0)
    assert abs((X ** 2).mean() - S) < 4 * (X ** 2).std() / np.sqrt(chains) + 2e-3
    assert abs(S - s) > 10 * (th ** 2).std() / np.sqrt(chains)      # the O(eta) gap is resolved


def test_batch_enumeration():
    idx, p = batches(5, 2, False)
    assert idx.shape == (10, 2) and p.sum() == pytest.approx(1.0)
    idx, p = batches(5, 2, True)
    assert idx.shape == (25, 2)
    with pytest.raises(ValueError, match="enumerate"):
        batches(100, 10, False)
