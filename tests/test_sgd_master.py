"""The discrete master equation (review (37)-(38)) and the fluctuation-dissipation relation (42)-(43)."""
import numpy as np
import pytest

from pdenet.network.sgd_noise import batch_factor
from pdenet.sgd.fdr import fdr_run, fdr_sides, fdr_stationary, two_point
from pdenet.sgd.master import Grid, batch_set, fp_steady_state_1d, identity_38, stationary, transfer_operator
from pdenet.sgd.problems import Anharmonic1D, LeastSquares, batches
from pdenet.sgd.weak import BatchMoments, observed_orders


def _ls1d():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, 8)
    return LeastSquares(x, 2.0 * x + 0.5 * rng.standard_normal(8))


def _ls2d():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 2)) + np.array([1.0, 0.0])
    return LeastSquares(X, X @ np.array([1.0, -2.0]) + 0.5 * rng.standard_normal(16))


def test_master_equation_stationary_converges_to_fp_steady_state_at_order_one():
    """1-D, batch 1 with replacement (enumerated): the L1 distance between the stationary density of
    the transfer operator and the stationary FP density of the SDE falls as eta^1 (grid fine enough
    that halving h changes the distance by < 1%)."""
    prob = _ls1d()
    bm = BatchMoments(prob, 1, True)
    xs, idx, p = prob.minimiser[0], *batch_set(8, 1, True)
    etas, dist = [0.2, 0.1, 0.05, 0.025], []
    for eta in etas:
        s = np.sqrt(eta * bm.sigma(xs) / (2 * bm.EA))
        g = Grid([np.linspace(xs - 10 * s, xs + 10 * s, 1500)])
        ps = stationary(transfer_operator(prob, g, eta, idx, p))
        fp = fp_steady_state_1d(lambda z: bm.EA * z - bm.EC, bm.sigma, eta, g.axes[0])
        dist.append(np.sum(np.abs(ps / g.h[0] - fp)) * g.h[0])
        # identity (38): exact for the interpolant of O, O(h^2) for O itself
        lhs, exact, interp = identity_38(prob, g, eta, idx, p, ps, lambda z: np.cos(3 * z[:, 0]))
        assert abs(lhs - interp) < 1e-13 and abs(lhs - exact) < 10 * g.h[0] ** 2
    orders = observed_orders(etas, dist)
    assert np.all(np.abs(orders - 1.0) < 0.2), (dist, orders)
    assert dist[-1] < 0.03


def test_master_equation_2d_linear_moments_identity_and_fdr():
    """2-D least squares, batch 1 of 16 with replacement (enumerated), an 80 x 80 grid over +-5
    stationary standard deviations: mass conserved, the stationary mean is the minimiser (g_B is
    affine and multilinear deposits keep linear observables), identity (38) holds for the
    interpolant, and the FDR (42) holds on the stationary vector up to the grid's O(h^2)."""
    prob, eta = _ls2d(), 0.3
    idx, p = batch_set(16, 1, True)
    xs = prob.minimiser
    sd = np.sqrt(eta * np.diag(prob.sigma_d(xs)) / (2 * np.diag(prob.H)))
    grid = Grid([np.linspace(xs[j] - 5 * sd[j], xs[j] + 5 * sd[j], 80) for j in range(2)])
    T = transfer_operator(prob, grid, eta, idx, p)
    assert np.allclose(np.asarray(T.sum(axis=0)).ravel(), 1.0)
    ps = stationary(T)
    assert np.allclose(ps @ grid.points, xs, atol=1e-3 * np.abs(xs).max())
    lhs, exact, interp = identity_38(prob, grid, eta, idx, p, ps, lambda z: np.sin(z[:, 0]) * z[:, 1])
    assert abs(lhs - interp) < 1e-12
    L, R = fdr_stationary(prob, grid, ps, eta, 1, True)
    assert abs(L - R) < 0.03 * R, (L, R)


def test_two_point_matrix_is_factor_sigma_d_plus_mean_by_enumeration():
    """Sigma~_B = E_B g_B g_B^T over every batch = c Sigma_D + g g^T (both samplings); review (43)'s
    1/l - 1/S differs from the exact c = (S - l)/(l (S - 1)) by the factor S/(S - 1)."""
    prob = _ls2d()
    theta = np.array([0.3, -1.1])
    for repl in (True, False):
        idx, p = batches(16, 2, repl)
        gb = prob.batch_grad(np.broadcast_to(theta, (idx.shape[0], 2)), idx)
        ref = np.einsum("b,bi,bj->ij", p, gb, gb)
        assert np.allclose(two_point(prob, theta, 2, repl), ref, rtol=1e-12)
    assert batch_factor(16, 2, False) == pytest.approx((1 / 2 - 1 / 16) * 16 / 15)


@pytest.mark.parametrize("eta", [0.2, 0.1, 0.05])
def test_fdr_holds_on_long_runs_of_a_quadratic_loss(eta):
    """2-D least squares, batch 2 without replacement: (42) holds within 4 standard errors over
    400 chains x 50/eta iterations."""
    prob = _ls2d()
    r = fdr_run(prob, eta, 2, False, prob.minimiser, 400, int(10 / eta), int(50 / eta),
                np.random.default_rng(int(100 * eta)), every=5)
    assert abs(r.z) < 4, r
    assert r.diff_se < 0.02 * r.rhs


def test_fdr_fails_far_from_stationarity():
    prob = _ls2d()
    far = fdr_run(prob, 0.1, 2, False, prob.minimiser + 5.0, 200, 0, 5, np.random.default_rng(1))
    assert far.lhs > 3 * far.rhs and abs(far.z) > 10


def test_fdr_violation_of_an_anharmonic_loss_is_order_eta_squared():
    """f_i = a_i (theta - b_i)^2 / 2 + 0.8 (1 - cos theta): on the exact stationary distribution of
    the master equation (1-D grid, no sampling error) the relative violation of (42) is the
    higher-derivative terms, observed order 2 in eta."""
    from scipy.optimize import brentq

    an = Anharmonic1D(np.linspace(0.5, 1.5, 8), np.sin(np.arange(8.0)), 0.8)
    xs = brentq(lambda t: an.grad(np.array([t]))[0], -3, 3)
    idx, p = batch_set(8, 1, True)
    etas, rel = [0.4, 0.2, 0.1], []
    for eta in etas:
        s = np.sqrt(eta * an.sigma_d(np.array([xs]))[0, 0] / (2 * an.hessian(np.array([xs]))[0, 0]))
        g = Grid([np.linspace(xs - 12 * s, xs + 12 * s, 2000)])
        L, R = fdr_stationary(an, g, stationary(transfer_operator(an, g, eta, idx, p)), eta, 1, True)
        rel.append((L - R) / L)
    orders = observed_orders(etas, np.abs(rel))
    assert rel[0] > 0.01 and np.all(np.abs(orders - 2.0) < 0.25), (rel, orders)


def test_fdr_sides_shape():
    lhs, rhs = fdr_sides(_ls2d(), np.zeros((3, 2)), 0.1, 2, True)
    assert lhs.shape == rhs.shape == (3,)
