"""Levy-driven SGD particles (pdenet.sgd.levy): the alpha-stable sampler and escape times."""
import math

import numpy as np
import pytest

from pdenet.sgd import levy


@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.5, 2.0])
def test_cms_sampler_has_the_stable_characteristic_function(alpha):
    """E cos(tZ) = exp(-|t|^alpha) (the closed form of the standard symmetric stable law)."""
    rng = np.random.default_rng(17)
    z = levy.stable(alpha, 200_000, rng)
    for t in (0.3, 1.0, 2.0):
        c = np.cos(t * z)
        se = c.std() / math.sqrt(z.size)
        assert abs(c.mean() - math.exp(-t ** alpha)) < 5 * se + 1e-4, (t, c.mean(), math.exp(-t ** alpha))
    if alpha == 2.0:
        assert z.var() == pytest.approx(2.0, rel=0.02)


def test_bad_tail_index_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        levy.stable(2.5, 3, np.random.default_rng(0))


def test_alpha_two_reproduces_the_brownian_exit_time():
    """alpha = 2 particles of the double well U = x^4/4 - x^2/2 (temperature D = eps^2) leave (-2, 0)
    from the minimum -1 after the exact mean first passage time, within sampling error (+1% for
    the time step); the exact time approaches Kramers' asymptotic (pi / sqrt(U''(-1) |U''(0)|)) e^(dU/D),
    half the Kramers escape time over the barrier (reaching the saddle), as D -> 0."""
    U = lambda x: x ** 4 / 4 - x ** 2 / 2           # noqa: E731
    D = 0.15
    exact = levy.brownian_exit_time(U, D, -2.0, 0.0, -1.0)
    tau = levy.exit_times(lambda x: x ** 3 - x, 2.0, math.sqrt(D), -2.0, 0.0, -1.0, 1500, 0.004,
                          np.random.default_rng(3))
    se = tau.std() / math.sqrt(tau.size)
    assert abs(tau.mean() - exact) < 4 * se + 0.01 * exact, (tau.mean(), se, exact)
    # Kramers: the time to reach the saddle is half the escape time 2 pi / sqrt(U''(-1)|U''(0)|) e^(dU/D)
    kramers = lambda D: math.pi / math.sqrt(2.0) * math.exp(0.25 / D)     # noqa: E731
    ratios = [levy.brownian_exit_time(U, d, -2.0, 0.0, -1.0) / kramers(d) for d in (0.1, 0.05, 0.025)]
    assert abs(ratios[-1] - 1) < 0.06 and abs(ratios[-1] - 1) < abs(ratios[0] - 1)


def _exponent(alpha, levels, particles, seed, width=False):
    rng = np.random.default_rng(seed)
    times = []
    for v in levels:
        w, eps = (v, 0.05) if width else (1.0, v)
        tau = levy.exit_times(lambda x: x, alpha, eps, -w, w, 0.0, particles, 0.05, rng)
        times.append(tau.mean())
    return levy.scaling_exponent(levels, times), times


def test_levy_exit_time_scales_as_noise_to_the_minus_alpha():
    """alpha = 1.2 from the well U = x^2/2 out of (-1, 1): E tau ~ eps^-alpha (exponent within 10%),
    and the small-noise prefactor alpha / (2 c_alpha eps^alpha) within 10% at eps = 0.02."""
    slope, times = _exponent(1.2, [0.02, 0.04, 0.08], 500, 5)
    assert abs(-slope - 1.2) < 0.1 * 1.2, slope
    assert times[0] == pytest.approx(levy.levy_exit_time_asymptotic(1.2, 0.02, 1.0, 1.0), rel=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [1.5, 1.8])
def test_levy_exit_time_exponents_in_noise_and_width(alpha):
    slope, _ = _exponent(alpha, [0.02, 0.04, 0.08], 600, 7)
    assert abs(-slope - alpha) < 0.1 * alpha, slope
    wslope, _ = _exponent(alpha, [0.5, 1.0, 2.0], 600, 8, width=True)
    assert abs(wslope - alpha) < 0.1 * alpha, wslope
