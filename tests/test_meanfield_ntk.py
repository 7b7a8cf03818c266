"""NNGP kernel and NTK of wide random networks (review §3.2, eqs. 11-12; Jacot et al. 2018):
the infinite-width recursions against an independent computation, the empirical NTK of finite
networks from the exact Jacobian, and gradient descent against the kernel prediction."""
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import erf, ndtr

import pdenet
from pdenet.errors import CaseError
from pdenet.meanfield import ntk

SW2, SB2 = 1.5, 0.1
_PDF = lambda u, k: math.exp(-0.5 * u * u / k) / math.sqrt(2 * math.pi * k)


def _inputs(n=4, d=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


# --- an independent computation: 1-D adaptive quadrature over u of E[.|u] in closed form -------
def _cond_relu(m, s):        # E[relu(v)], E[1{v>0}] for v ~ N(m, s^2)
    if s == 0.0:
        return max(m, 0.0), float(m > 0)
    return m * ndtr(m / s) + s * math.exp(-0.5 * (m / s) ** 2) / math.sqrt(2 * math.pi), ndtr(m / s)


def _cond_erf(m, s):         # E[erf(v)], E[erf'(v)] for v ~ N(m, s^2)
    r = 1.0 + 2.0 * s * s
    return erf(m / math.sqrt(r)), (2 / math.sqrt(math.pi)) * math.exp(-m * m / r) / math.sqrt(r)


ORACLE = {
    "relu": (lambda u: max(u, 0.0), lambda u: float(u > 0), _cond_relu, (0.0, math.inf)),
    "erf": (erf, lambda u: (2 / math.sqrt(math.pi)) * math.exp(-u * u), _cond_erf, (-math.inf, math.inf)),
}


def _oracle_moments(k11, k22, k12, name):
    phi, dphi, cond, (lo, hi) = ORACLE[name]
    m_of = lambda u: k12 / k11 * u
    s = math.sqrt(max(k22 - k12 * k12 / k11, 0.0))
    if s < 1e-9 * math.sqrt(k22):
        s = 0.0
    opts = dict(epsabs=0.0, epsrel=1e-13, limit=200)
    e = integrate.quad(lambda u: phi(u) * cond(m_of(u), s)[0] * _PDF(u, k11), lo, hi, **opts)[0]
    ed = sum(integrate.quad(lambda u: dphi(u) * cond(m_of(u), s)[1] * _PDF(u, k11), a, b, **opts)[0]
             for a, b in ((lo, 0.0), (0.0, hi)) if a < b)
    return e, ed


def _oracle_recursion(X, depth, name):
    n = X.shape[0]
    K = SW2 * X @ X.T / X.shape[1] + SB2
    T = K.copy()
    for _ in range(1, depth):
        Kn, Tn = np.empty_like(K), np.empty_like(K)
        for i in range(n):
            for j in range(n):
                e, ed = _oracle_moments(K[i, i], K[j, j], K[i, j], name)
                Kn[i, j] = SW2 * e + SB2
                Tn[i, j] = Kn[i, j] + SW2 * ed * T[i, j]
        K, T = Kn, Tn
    return K, T


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_closed_form_recursions_match_independent_quadrature(name):
    """NNGP and NTK after 4 layers (arc-cosine / arcsine closed forms) against 1-D adaptive
    quadrature of the conditional expectations E[phi(v) | u] in closed form: 1e-10."""
    X = _inputs()
    K, T = ntk.nngp_ntk(X, 4, SW2, SB2, name)
    K0, T0 = _oracle_recursion(X, 4, name)
    np.testing.assert_allclose(K, K0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(T, T0, rtol=1e-10, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(T) > 0)


def test_quadrature_path_for_tanh():
    """The Gauss-Hermite path (tanh) against nested adaptive quadrature, one layer, 1e-9."""
    k11, k22, k12 = 1.3, 0.7, -0.4
    e, ed = ntk.kernel_moments(k11, k22, k12, "tanh")
    s = math.sqrt(k22 - k12 * k12 / k11)

    def inner(u, f):
        m = k12 / k11 * u
        return integrate.quad(lambda z: f(m + s * z) * _PDF(z, 1.0), -12, 12, epsabs=1e-14, epsrel=1e-13)[0]

    sech2 = lambda x: 1.0 / math.cosh(x) ** 2
    e0 = integrate.quad(lambda u: math.tanh(u) * inner(u, math.tanh) * _PDF(u, k11), -14, 14,
                        epsabs=1e-14, epsrel=1e-12)[0]
    ed0 = integrate.quad(lambda u: sech2(u) * inner(u, sech2) * _PDF(u, k11), -14, 14,
                         epsabs=1e-14, epsrel=1e-12)[0]
    assert float(e) == pytest.approx(e0, rel=1e-9)
    assert float(ed) == pytest.approx(ed0, rel=1e-9)
    # and the closed forms agree with the quadrature path where both apply (erf, smooth)
    from pdenet.meanfield.maps import ACTIVATIONS, Activation
    a = ACTIVATIONS["erf"]
    plain = Activation("erf-gh", a.phi, a.dphi, a.d2phi)
    np.testing.assert_allclose(ntk.kernel_moments(k11, k22, k12, plain), ntk.kernel_moments(k11, k22, k12, a),
                               rtol=1e-9)


def test_jacobian_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    X = _inputs(3, 4)
    params = ntk.init_params(4, 6, 3, seed=2)
    J = ntk.jacobian(params, X, SW2, SB2, "tanh")
    tp = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in params]
    sw, sb = math.sqrt(SW2), math.sqrt(SB2)
    rows = []
    for x in torch.tensor(X):
        h = x
        for l, (W, b) in enumerate(tp):
            h = sw / math.sqrt(W.shape[1]) * (W @ h) + sb * b
            if l < len(tp) - 1:
                h = torch.tanh(h)
        g = torch.autograd.grad(h[0], [t for pair in tp for t in pair])
        rows.append(torch.cat([t.reshape(-1) for t in g]).numpy())
    np.testing.assert_allclose(J, np.array(rows), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(J @ J.T, ntk.empirical_ntk(params, X, SW2, SB2, "tanh"), rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_empirical_ntk_converges_at_one_over_sqrt_width(name):
    """RMS relative error of the empirical NTK (16 random networks per width, depth 3) falls
    like width^(-1/2): fitted log-log slope in [-0.65, -0.35], and the width-1024 error is
    below 0.1."""
    X = _inputs()
    _, T = ntk.nngp_ntk(X, 3, SW2, SB2, name)
    widths = np.array([32, 128, 512, 1024])
    rms = []
    for w in widths:
        errs = [np.linalg.norm(ntk.empirical_ntk(ntk.init_params(5, w, 3, seed=s), X, SW2, SB2, name) - T)
                for s in range(16)]
        rms.append(math.sqrt(np.mean(np.square(errs))) / np.linalg.norm(T))
    slope = np.polyfit(np.log(widths), np.log(rms), 1)[0]
    assert -0.65 < slope < -0.35, (slope, rms)
    assert rms[-1] < 0.1


def test_gd_on_a_wide_network_follows_the_kernel_prediction():
    """Full-batch GD on a one-hidden-layer erf network: the outputs on the training set follow
    u_k = y + (I - eta Theta)^k (u_0 - y) with Theta the infinite-width NTK; the worst relative
    deviation over the run shrinks with width (~ width^-1/2), and the late-time decay rate of
    |u_k - y| is eta lambda_min(Theta)."""
    X = _inputs(8, 5)
    y = np.sin(X[:, 0])
    _, T = ntk.nngp_ntk(X, 2, SW2, SB2, "erf")
    lam = np.linalg.eigvalsh(T)
    eta = 0.3 / lam[-1]
    steps = int(4.0 / (eta * lam[0]))
    dev, rates = [], []
    for w in (256, 1024, 4096):
        d = []
        for s in range(2):
            tr = ntk.train_gd(ntk.init_params(5, w, 2, seed=s), X, y, SW2, SB2, "erf", eta, steps)
            pred = ntk.kernel_prediction(T, tr.u[0], y, eta, steps)
            d.append(np.linalg.norm(tr.u - pred, axis=1).max() / np.linalg.norm(tr.u[0] - y))
        dev.append(np.mean(d))
        r = np.log(np.linalg.norm(tr.u - y, axis=1))
        k = np.arange(steps + 1)
        rates.append(-np.polyfit(k[steps // 2:], r[steps // 2:], 1)[0])
    assert dev[0] > dev[1] > dev[2], dev
    assert dev[2] < 0.5 * dev[0] and dev[2] < 0.02, dev
    assert rates[-1] == pytest.approx(-math.log(1 - eta * lam[0]), rel=0.1), (rates, eta * lam[0])
    # the continuous form exp(-eta Theta t) differs from the discrete one by O(eta lambda)
    pc = ntk.kernel_prediction(T, tr.u[0], y, eta, steps, continuous=True)
    assert np.abs(pc - pred).max() < 0.3 * np.abs(tr.u[0] - y).max()


def test_ntk_case_writes_the_kernels(tmp_path):
    case = str(tmp_path / "ntk.toml")
    with open(case, "w") as f:
        f.write('[case]\nname = "ntk"\nmodel = "mean-field"\n[model]\nanalyses = ["ntk"]\n'
                'activation = "relu"\n[model.ntk]\ninputs = [[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]]\n'
                'depth = 4\nsw2 = 2.0\nsb2 = 0.1\nwidth = 256\n')
    r = pdenet.run(case, output=str(tmp_path / "ntk.h5"))
    X = np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]])
    K, T = ntk.nngp_ntk(X, 4, 2.0, 0.1, "relu")
    back = pdenet.open(str(tmp_path / "ntk.h5"))
    np.testing.assert_allclose(back.analysis["nngp"], K, rtol=1e-14)
    np.testing.assert_allclose(back.analysis["ntk"], T, rtol=1e-14)
    assert back.analysis["ntk_empirical"].shape == (3, 3)
    assert r.attrs["ntk_empirical_relative_error"] < 0.5
    for bad, msg in (("[[1.0, 2.0], [1.0]]", "same length"), ('"cifar:3"', "digits:N"),
                     ("[1.0, 2.0]", "lists of numbers")):
        with pytest.raises(CaseError, match=msg):
            pdenet.load_case(case, overrides=[f"model.ntk.inputs={bad}"])
