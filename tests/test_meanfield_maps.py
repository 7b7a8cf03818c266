"""Mean-field length/correlation maps, fixed points, depth scales and the critical line
(review §3.1–3.2; Schoenholz et al. 2017)."""
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import erf, ndtr

from pdenet.meanfield import (
    ACTIVATIONS,
    chi_1,
    chi_c,
    correlation_map,
    critical_sw2,
    depth_scale,
    fixed_point_c,
    fixed_point_q,
    length_map,
    phase_diagram,
    trainable_depth,
    xi_c,
    xi_q,
)
from pdenet.meanfield.maps import (
    bivariate_expectation,
    chi_q,
    gaussian_expectation,
    moment_dphi2,
    moment_dphidphi,
    moment_phi2,
    moment_phiphi,
)
import reference

SB2 = 0.05  # the sigma_b^2 of the review's Fig. 1b


def _gauss_quad(f, q):
    """E[f(sqrt(q) z)] by adaptive quadrature (tails beyond |z| = 12 are below 1e-31)."""
    s = math.sqrt(q)
    g = lambda z: f(s * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return quad(g, -12.0, 12.0, points=[0.0], epsabs=1e-15, epsrel=1e-13, limit=400)[0]


def _tanh_critical_reference(sb2):
    """Critical sigma_w^2 of tanh from adaptive quadrature and nested brentq, independent of
    the Gauss–Hermite code."""
    def q_star(sw2):
        G = lambda q: sw2 * _gauss_quad(lambda s: math.tanh(s) ** 2, q) + sb2 - q
        return brentq(G, sb2, sw2 + sb2, xtol=1e-15, rtol=1e-15)

    def g(sw2):
        return sw2 * _gauss_quad(lambda s: 1.0 / math.cosh(s) ** 4, q_star(sw2)) - 1.0

    return brentq(g, 1.2, 2.5, xtol=1e-13, rtol=1e-14)


# --------------------------------------------------------------------------------------------
# activations and quadrature
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    a = ACTIVATIONS[name]
    s = np.array([-2.3, -0.7, -0.2, 0.3, 0.9, 1.7])  # away from kinks at 0
    h = 1e-6
    np.testing.assert_allclose(a.dphi(s), (a.phi(s + h) - a.phi(s - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(a.d2phi(s), (a.dphi(s + h) - a.dphi(s - h)) / (2 * h), atol=1e-7)


def test_leaky_relu_slope_and_names():
    a = ACTIVATIONS["leaky_relu"]
    np.testing.assert_allclose(a.phi(np.array([-2.0, 3.0])), [-0.2, 3.0])
    with pytest.raises(ValueError, match="unknown activation"):
        length_map(1.0, 1.0, 0.0, "swish")


@pytest.mark.parametrize("q", [0.3, 1.0, 2.0])
def test_gauss_hermite_length_map_matches_adaptive_quadrature(q):
    ref = 1.7 * _gauss_quad(lambda s: math.tanh(s) ** 2, q) + SB2
    assert abs(length_map(q, 1.7, SB2, "tanh") - ref) < 1e-10
    ref1 = _gauss_quad(lambda s: 1.0 / math.cosh(s) ** 4, q)
    assert abs(moment_dphi2(q, "tanh") - ref1) < 1e-9


@pytest.mark.parametrize("q", [0.4, 1.5])
@pytest.mark.parametrize("c", [-0.6, 0.3, 0.95])
def test_erf_arcsine_kernel_matches_quadrature(q, c):
    """Closed forms E[erf erf] and E[erf' erf'] against the tensor Gauss–Hermite rule (erf is
    entire, so the rule is exact to round-off here)."""
    a = ACTIVATIONS["erf"]
    gh = bivariate_expectation(a.phi, a.phi, q, c, order=121)
    assert abs(moment_phiphi(q, c, "erf") - gh) < 1e-12
    gh = bivariate_expectation(a.dphi, a.dphi, q, c, order=121)
    assert abs(moment_dphidphi(q, c, "erf") - gh) < 1e-11
    assert abs(moment_phi2(q, "erf") - _gauss_quad(lambda s: erf(s) ** 2, q)) < 1e-13


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
@pytest.mark.parametrize("c", [-0.8, 0.0, 0.5, 0.99])
def test_arccos_kernel_matches_conditional_quadrature(name, c):
    """E[phi(u1) phi(u2)] and E[phi'(u1) phi'(u2)] for phi = alpha s + (1-alpha) relu(s):
    closed forms against a 1-D quadrature of the conditional expectation given u1."""
    alpha = 0.1 if name == "leaky_relu" else 0.0
    q = 1.7
    s = math.sqrt(q * (1 - c * c))

    def cond_phi(u1):  # E[phi(u2) | u1], u2 | u1 ~ N(c u1, s^2)
        mu = c * u1
        e_relu = mu * ndtr(mu / s) + s * math.exp(-0.5 * (mu / s) ** 2) / math.sqrt(2 * math.pi)
        return alpha * mu + (1 - alpha) * e_relu

    def cond_dphi(u1):
        p_pos = ndtr(c * u1 / s)
        return p_pos + alpha * (1 - p_pos)

    phi = lambda u: u if u > 0 else alpha * u
    dphi = lambda u: 1.0 if u > 0 else alpha
    ref = _gauss_quad(lambda u: phi(u) * cond_phi(u), q)
    ref_d = _gauss_quad(lambda u: dphi(u) * cond_dphi(u), q)
    assert abs(moment_phiphi(q, c, name) - ref) < 1e-10
    assert abs(moment_dphidphi(q, c, name) - ref_d) < 1e-10


# --------------------------------------------------------------------------------------------
# critical line
# --------------------------------------------------------------------------------------------
def test_tanh_critical_line_matches_adaptive_quadrature():
    ours = critical_sw2(SB2, "tanh")
    ref = _tanh_critical_reference(SB2)
    assert abs(ours - ref) < 1e-6
    # the review's Fig. 1b: trainability peaks near sigma_w^2 = 1.75 at sigma_b^2 = 0.05
    fig = reference.ref("meanfield", "tanh_critical_sw2_fig1b")
    assert fig["sigma_b2"] == SB2
    assert abs(ours - fig.value) < fig.tolerance
    # and it is a root: chi_1 = 1 there
    assert abs(chi_1(ours, SB2, "tanh") - 1.0) < 1e-12


def test_relu_chi1_and_critical_point():
    for sw2, sb2 in [(0.5, 0.0), (1.3, 0.1), (1.9, 0.7), (2.6, 0.2)]:
        assert abs(chi_1(sw2, sb2, "relu") - sw2 / 2) < 1e-14
    relu = reference.ref("meanfield", "relu_critical_sw2")
    leaky = reference.ref("meanfield", "leaky_relu_critical_sw2")
    assert abs(critical_sw2(0.0, "relu") - relu.value) < relu.tolerance
    assert abs(critical_sw2(0.3, "relu") - relu.value) < relu.tolerance
    assert abs(critical_sw2(0.0, "leaky_relu") - leaky.value) < leaky.tolerance
    # the length map of relu: q* = sigma_b^2 / (1 - sigma_w^2/2), unbounded beyond sigma_w^2 = 2
    assert abs(fixed_point_q(1.5, 0.2, "relu") - 0.2 / (1 - 0.75)) < 1e-12
    assert fixed_point_q(2.5, 0.2, "relu") == math.inf


def test_erf_and_tanh_critical_point_at_zero_bias():
    for name in ("erf", "tanh", "arctan"):
        crit = reference.ref("meanfield", f"{name}_critical_sw2_zero_bias")
        assert abs(critical_sw2(0.0, name) - crit.value) < crit.tolerance, name
    # trivial fixed point below, non-trivial above
    assert fixed_point_q(0.7, 0.0, "erf") == 0.0
    assert fixed_point_q(0.9, 0.0, "erf") > 0.0


def test_fixed_points_are_fixed_and_c_equal_one_is_always_fixed():
    for sw2 in (1.2, 2.5):
        qs = fixed_point_q(sw2, SB2, "tanh")
        assert abs(length_map(qs, sw2, SB2, "tanh") - qs) < 1e-14
        assert abs(correlation_map(1.0, qs, sw2, SB2, "tanh") - 1.0) < 1e-14
        cs = fixed_point_c(sw2, SB2, "tanh", qs)
        assert abs(correlation_map(cs, qs, sw2, SB2, "tanh") - cs) < 1e-13
    assert fixed_point_c(1.2, SB2, "tanh") == 1.0  # ordered
    assert fixed_point_c(2.5, SB2, "tanh") < 0.5  # chaotic
    assert abs(fixed_point_c(2.5, 0.0, "tanh")) < 1e-12  # odd phi, no bias: c* = 0


# --------------------------------------------------------------------------------------------
# depth scales
# --------------------------------------------------------------------------------------------
def test_xi_c_diverges_at_the_critical_line():
    crit = critical_sw2(SB2, "tanh")
    gaps = [0.5, 0.2, 0.1, 0.05, 0.02, 0.005, 0.001]
    below = [xi_c(crit - d, SB2, "tanh") for d in gaps]
    above = [xi_c(crit + d, SB2, "tanh") for d in gaps]
    assert np.all(np.diff(below) > 0) and np.all(np.diff(above) > 0)
    assert below[-1] > 1e3 and above[-1] > 1e3
    assert below[0] < 30 and above[0] < 30
    assert xi_c(crit, SB2, "tanh") > 1e6


def _fitted_depth(deltas, lo, hi):
    """-1 / slope of log|delta_l| against l over the layers with lo < |delta_l| < hi."""
    deltas = np.abs(np.asarray(deltas))
    sel = np.nonzero((deltas > lo) & (deltas < hi))[0]
    assert sel.size >= 10
    slope = np.polyfit(sel, np.log(deltas[sel]), 1)[0]
    return -1.0 / slope


@pytest.mark.parametrize("sw2, c0", [(1.3, 0.5), (2.5, 0.9)])  # ordered, chaotic
def test_xi_c_is_the_decay_length_of_the_iterated_correlation_map(sw2, c0):
    qs = fixed_point_q(sw2, SB2, "tanh")
    cs = fixed_point_c(sw2, SB2, "tanh", qs)
    c = [c0]
    for _ in range(400):
        c.append(float(correlation_map(c[-1], qs, sw2, SB2, "tanh")))
    measured = _fitted_depth(np.array(c) - cs, 1e-10, 1e-4)
    assert abs(measured / xi_c(sw2, SB2, "tanh") - 1.0) < 1e-4
    # xi_c = -1/log chi_c and the review's eq. 10
    assert abs(xi_c(sw2, SB2, "tanh") + 1.0 / math.log(chi_c(sw2, SB2, "tanh"))) < 1e-12


@pytest.mark.parametrize("name, sw2", [("tanh", 1.3), ("tanh", 2.5), ("erf", 2.0)])
def test_xi_q_is_the_decay_length_of_the_iterated_length_map(name, sw2):
    qs = fixed_point_q(sw2, SB2, name)
    q = [3.0 * qs]
    for _ in range(300):
        q.append(float(length_map(q[-1], sw2, SB2, name)))
    measured = _fitted_depth(np.array(q) - qs, 1e-11, 1e-4)
    assert abs(measured / xi_q(sw2, SB2, name) - 1.0) < 1e-4
    # Schoenholz et al.: chi_q = chi_1 + sigma_w^2 E[phi'' phi] differs from chi_1
    assert chi_q(sw2, SB2, name) < chi_1(sw2, SB2, name)


def test_trainable_depth_is_six_xi_c():
    factor = reference.value("meanfield", "trainable_depth_factor")
    assert trainable_depth(1.5, SB2, "tanh") == pytest.approx(factor * xi_c(1.5, SB2, "tanh"), rel=1e-14)
    assert depth_scale(1.0) == math.inf and depth_scale(0.5) == pytest.approx(1 / math.log(2))


# --------------------------------------------------------------------------------------------
# phase diagram
# --------------------------------------------------------------------------------------------
def test_phase_diagram_is_consistent_with_the_critical_line():
    sw2 = np.array([0.8, 1.3, 1.9, 2.6, 3.5])
    sb2 = np.array([0.0, 0.05, 0.4])
    pd = phase_diagram(sw2, sb2, "tanh")
    for arr in (pd.q_star, pd.c_star, pd.chi_1, pd.chi_c, pd.xi_q, pd.xi_c):
        assert arr.shape == (5, 3)
    for j, b in enumerate(sb2):
        assert pd.critical_sw2[j] == pytest.approx(critical_sw2(b, "tanh"), abs=1e-12)
        chaotic = sw2 > pd.critical_sw2[j]
        assert np.array_equal(pd.chi_1[:, j] > 1, chaotic)
        assert np.array_equal(pd.c_star[:, j] < 1, chaotic)
        np.testing.assert_allclose(pd.chi_c[~chaotic, j], pd.chi_1[~chaotic, j])
    assert np.all(pd.chi_c < 1) and np.all(np.isfinite(pd.xi_c)) and np.all(pd.xi_c > 0)
    # the critical line moves to larger sigma_w^2 with the bias
    assert np.all(np.diff(pd.critical_sw2) > 0)


# --------------------------------------------------------------------------------------------
# large q: the q-adapted 1-D rule (sigmoid's critical line, elu's kink)
# --------------------------------------------------------------------------------------------
def _quad_s(f, q):
    """E[f(sqrt(q) z)] by adaptive quadrature in s = sqrt(q) z, with breakpoints where the
    activations vary (|s| <~ 30) and the Gaussian tails cut at |z| = 12."""
    r = math.sqrt(q)
    g = lambda s: f(s) * math.exp(-0.5 * s * s / q) / math.sqrt(2 * math.pi * q)
    pts = [p for p in (-30.0, -10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 10.0, 30.0) if abs(p) < 12 * r]
    return quad(g, -12 * r, 12 * r, points=pts, epsabs=0.0, epsrel=1e-13, limit=1000)[0]


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "arctan", "elu"])
@pytest.mark.parametrize("q", [1e-3, 0.7, 46.0, 1e3, 1e5])
def test_one_dimensional_rule_matches_adaptive_quadrature_at_any_q(name, q):
    a = ACTIVATIONS[name]
    ref = _quad_s(lambda s: float(a.phi(np.array(s))) ** 2, q)
    ref_d = _quad_s(lambda s: float(a.dphi(np.array(s))) ** 2, q)
    assert moment_phi2(q, name) == pytest.approx(ref, rel=1e-12)
    assert moment_dphi2(q, name) == pytest.approx(ref_d, rel=1e-12)


def test_gauss_hermite_at_large_q_is_what_the_panels_fix():
    """Sigmoid at q = 46 (its q* near the critical line): 201-node Gauss–Hermite is off by
    ~1e-3 in E[phi'^2], the default panel rule by < 1e-13."""
    a = ACTIVATIONS["sigmoid"]
    f = lambda s: a.dphi(s) ** 2
    ref = _quad_s(lambda s: float(f(np.array(s))), 46.0)
    assert abs(gaussian_expectation(f, 46.0, order=201) / ref - 1) > 1e-4
    assert abs(gaussian_expectation(f, 46.0) / ref - 1) < 1e-13
    np.testing.assert_allclose(gaussian_expectation(f, np.array([[46.0, 0.5]])),
                               [[gaussian_expectation(f, 46.0), gaussian_expectation(f, 0.5)]], rtol=1e-15)


def test_sigmoid_critical_line_matches_adaptive_quadrature():
    """The case the Gauss–Hermite rule got 0.4 % wrong (102.713 vs 103.128)."""
    sb2 = 0.05
    sig = lambda s: 1.0 / (1.0 + math.exp(-s)) if s > -700 else 0.0
    dsig = lambda s: sig(s) * (1.0 - sig(s))

    def q_star(sw2):
        G = lambda q: sw2 * _quad_s(lambda s: sig(s) ** 2, q) + sb2 - q
        return brentq(G, 1.0, sw2 + sb2, xtol=1e-13, rtol=1e-14)

    ref = brentq(lambda sw2: sw2 * _quad_s(lambda s: dsig(s) ** 2, q_star(sw2)) - 1.0, 95.0, 110.0,
                 xtol=1e-11, rtol=1e-13)
    ours = critical_sw2(sb2, "sigmoid")
    assert abs(ours - ref) < 1e-9 * ref
    assert abs(chi_1(ours, sb2, "sigmoid") - 1.0) < 1e-12
