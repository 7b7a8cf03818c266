"""Forward-problem analysis (Liu & Markowich Sect. 3): spectra, steady states, Theorem 3.4, linearisation."""
import numpy as np

import pdenet
from conftest import case_path
from pdenet.network import analysis as an


def test_theorem_3_4_measured_decay_matches_the_predicted_rate():
    r = pdenet.run(case_path("network_theorem34.toml"), write=False)
    t, nu = r.time, r.diagnostics["norm_u"]
    late = t >= t[-1] / 2
    measured = -np.polyfit(t[late], np.log(nu[late]), 1)[0]
    predicted = float(np.real(r.analysis["thm34_rate"][0]))
    # G = [[1, .5], [-.2, 3]]: eig = 2 - sqrt(0.9)
    assert abs(predicted - (2 - np.sqrt(0.9))) < 1e-12
    assert abs(measured - predicted) < 0.05 * predicted, (measured, predicted)
    assert r.attrs["thm34_T_invertible"] == 1 and r.attrs["thm34_DT_positive"] == 1
    np.testing.assert_allclose(r.analysis["thm34_gram"][0], [[1, 0.5], [-0.2, 3]], atol=1e-12)
    assert r.analysis["nullity"][0] == 64 - 2
    assert r.analysis["range_residual"][0] < 1e-12          # a = 0 is in R(B)
    assert np.all(r.analysis["linearised_growing"] == 0)


def test_an_indefinite_gram_matrix_gives_growth():
    """Same kernel with G = [[1, 0], [0, -0.5]]: DT not positive, the phi_2 mode grows."""
    over = ["model.kernel.psi=['sqrt(2)*cos(2*pi*y)', '-0.5*sqrt(2)*sin(2*pi*y)']", "time.t_end=6.0",
            "time.steps=120"]
    r = pdenet.run(case_path("network_theorem34.toml"), overrides=over, write=False)
    assert r.attrs["thm34_DT_positive"] == 0
    assert float(np.real(r.analysis["thm34_rate"][0])) < 0
    assert r.diagnostics["norm_u"][-1] > 5 * r.diagnostics["norm_u"][0]
    assert np.all(r.analysis["linearised_growing"] >= 1)


def test_svd_form_and_gram_form_have_the_same_spectrum(rng):
    N, h = 40, 1 / 40
    phi, psi = rng.standard_normal((3, N)), rng.standard_normal((3, N))
    st = an.finite_rank_stability(phi, psi, h, "arctan")
    a = np.sort_complex(st["eigenvalues"])
    b = np.sort_complex(st["gram_eigenvalues"])
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # D T reproduces (B f, f) = f^T D T f in the psi-coordinates of the paper
    B = h * phi.T @ psi
    U, mu, Vt = np.linalg.svd(B)
    f = Vt[:3].T @ rng.standard_normal(3)            # in span(psi_l), where the expansion is exact
    coeff = h * (Vt[:3] / np.sqrt(h)) @ f
    assert abs(h * f @ B @ f - coeff @ st["DT"] @ coeff) < 1e-10 * (1 + abs(h * f @ B @ f))


def test_spectrum_and_steady_states(rng):
    N, h = 30, 1 / 30
    B = rng.standard_normal((N, N)) * h
    ev, evs = an.spectrum(B)
    assert abs(ev.sum().real - np.trace(B)) < 1e-12 and abs(evs.sum() - np.trace(B)) < 1e-12
    assert np.all(np.diff(evs) >= 0) and np.all(np.diff(ev.real) >= -1e-15)
    # rank-deficient B: a in R(B) has a steady state, a in N(B^T) has none
    P = rng.standard_normal((N, 5))
    B = P @ rng.standard_normal((5, N)) * h
    s = an.steady_state(B, B @ rng.standard_normal(N), h)
    assert s["exists"] and s["nullity"] == N - 5 and s["rank"] == 5
    q = np.linalg.svd(P, full_matrices=True)[0][:, -1]          # orthogonal to R(B) = R(P)
    s = an.steady_state(B, q, h)
    assert not s["exists"] and abs(s["range_residual"] - 1.0) < 1e-10


def test_linearised_operator(rng):
    N = 12
    B = np.diag(np.linspace(-1.0, 2.0, N))        # one negative direction per negative entry
    lin = an.linearised_operator(np.zeros(N), B, "tanh")
    np.testing.assert_allclose(np.sort(lin["eigenvalues"].real), np.sort(-np.diag(B)), atol=1e-12)
    assert lin["growing"] == int(np.sum(np.diag(B) < 0)) and lin["growing"] + lin["decaying"] == N
    # saturated tanh switches modes off: sigma'(u) ~ 0 where |u| is large
    u = np.where(np.diag(B) < 0, 30.0, 0.0)
    assert an.linearised_operator(u, B, "tanh")["growing"] == 0
