"""Trajectory analysis (pdenet.sgd.trajectory) on processes with known spectra, and on SGD."""
import numpy as np
import pytest

from pdenet.sgd import trajectory as tr
from pdenet.sgd.problems import LeastSquares


def _ar1(phi, n, rng, cols=1):
    e = rng.standard_normal((n, cols))
    x = np.zeros((n, cols))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def test_white_noise_and_brownian_increments_are_white():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4096, 20))
    frac, p = tr.whiteness(w, 40)
    assert abs(frac.mean() - 0.05) < 0.02 and np.mean(p < 0.01) < 0.1
    f, P = tr.power_spectrum(tr.increments(np.cumsum(w, axis=0)))
    assert 0.499 < f[-1] <= 0.5                                  # cycles per iteration
    assert np.std(P[1:]) / np.mean(P[1:]) < 0.3                 # flat: averaged over 20 weights
    assert np.mean(P[1:]) == pytest.approx(1.0, rel=0.05)       # the variance of the increments


def test_ar1_autocorrelation_and_spectrum_match_closed_forms():
    """AR(1) x_t = phi x_{t-1} + e_t: rho_k = phi^k, S(f) = 1 / |1 - phi e^{-2 pi i f}|^2."""
    rng = np.random.default_rng(1)
    phi = -0.6
    x = _ar1(phi, 20000, rng, cols=8)
    rho, band = tr.autocorrelation(x, 5)
    assert np.allclose(rho.mean(axis=1), phi ** np.arange(6), atol=0.02)
    f, P = tr.power_spectrum(x)
    S = 1 / np.abs(1 - phi * np.exp(-2j * np.pi * f)) ** 2
    # periodogram averaged over 8 series and then over 200-bin blocks vs the closed form
    blocks = slice(1, 1 + 200 * 49)
    ratio = P[blocks].reshape(49, 200).mean(axis=1) / S[blocks].reshape(49, 200).mean(axis=1)
    assert np.all(np.abs(ratio - 1) < 0.1)
    frac, p = tr.whiteness(x, 20)
    assert np.all(p < 1e-6)


def test_sgd_increments_near_a_minimum_are_not_white():
    """SGD on 2-D least squares at stationarity is mean-reverting (an AR(1) x_t = phi x_{t-1} + e_t
    has increments with rho_1 = -(1 - phi)/2), so its increments are anti-correlated at lag 1 and
    fail the white-noise test, unlike Brownian motion's."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((16, 2)) + np.array([1.0, 0.0])
    prob = LeastSquares(X, X @ np.array([1.0, -2.0]) + 0.5 * rng.standard_normal(16))
    th, traj = prob.minimiser.copy(), []
    for _ in range(20000):
        th = th - 0.5 * prob.batch_grad(th, rng.integers(0, 16, 1))
        traj.append(th.copy())
    d = tr.increments(np.array(traj))
    rho, band = tr.autocorrelation(d, 3)
    assert np.all(rho[1] < -band)       # anti-persistent increments: mean reversion
    frac, p = tr.whiteness(d, 20)
    assert np.all(p < 1e-6)


def test_trajectory_table_records_weights_along_training():
    """[trajectory] on digits with mini-batch gd: the recorded entries equal /controls at the end,
    the written autocorrelation is that of their increments, constant entries give NaN."""
    import pdenet
    from conftest import case_path

    over = ["data.limit=24", "train.iterations=30", "train.eval_every=30", "sgd_noise.where=none",
            "model.intervals=1", "time.steps=1", "trajectory.weights=40", "trajectory.lags=5",
            "train.method=gd", "train.batch_size=4"]
    r = pdenet.run(case_path("digits_sgd_noise.toml"), overrides=over, write=False)
    theta = r.analysis["trajectory_weights"]
    assert theta.shape == (31, 40)
    flat = np.concatenate([np.ravel(r.controls[n]) for n in ("a", "b", "W", "mu")])
    np.testing.assert_array_equal(theta[-1], flat[r.analysis["trajectory_indices"].astype(int)])
    rho, _ = tr.autocorrelation(tr.increments(theta), 5)
    np.testing.assert_allclose(r.analysis["trajectory_autocorrelation"], rho, equal_nan=True)
    assert 0 < r.attrs["trajectory_moving_weights"] <= 40
