"""Out-of-equilibrium Fokker-Planck (issue 13, thesis ch. 6): state-dependent diffusion tensors
in the Ito and Fick forms against closed-form steady states, mass conservation, particles with
the same convention; Lemma 6.44 against scipy; the implicit potential, the conservative force,
kl_to_steady; Example 6.43."""
import numpy as np
import pytest
from scipy.integrate import quad

import pdenet
from pdenet.converge import converge
from pdenet.errors import CaseError
from pdenet.fokkerplanck.fv import FokkerPlanckOperator, TensorField
from pdenet.mesh import Mesh

from conftest import case_path

FICK_EXACT = 'exact.rho="exp(-x^2/2 + 0.3*sin(x))/2.555491125798403"'


def run(name, *overrides):
    return pdenet.run(case_path(name), overrides=list(overrides), write=False)


def test_ito_1d_normalising_constants_in_the_case():
    """The constants written in fp_ito_1d.toml are the integrals they claim to be."""
    D = lambda x: 0.5 + 0.25 * x * x  # noqa: E731
    g = lambda x: np.exp(-x * x / 2 + 0.3 * np.sin(x))  # noqa: E731
    assert quad(lambda x: g(x) / D(x), -4, 4, epsabs=0, epsrel=1e-13)[0] == pytest.approx(3.8590499141913885, rel=1e-12)
    assert quad(g, -4, 4, epsabs=0, epsrel=1e-13)[0] == pytest.approx(2.555491125798403, rel=1e-12)


@pytest.mark.parametrize("form,exact", [("ito", None), ("fick", FICK_EXACT)])
def test_state_dependent_1d_steady_state_is_second_order(form, exact):
    """rho_ss ∝ D^-1 exp(int b/D) (Ito) and ∝ exp(int b/D) (Fick): observed order 2 under mesh
    refinement (the pdenet converge computation), each form to its own closed form."""
    over = [f'model.form="{form}"'] + ([exact] if exact else [])
    case = pdenet.load_case(case_path("fp_ito_1d.toml"), over)
    s = converge(case, "mesh.cells", [50, 100, 200, 400], field="rho")
    orders = [o for o in s["orders"] if o is not None and np.isfinite(o)]
    assert len(orders) == 3 and min(orders) > 1.95, s["orders"]
    assert s["errors"][-1] < 2e-6


def test_the_two_forms_are_different_equations():
    """With D(x) the Ito steady state is not the Fick one (they differ by the factor 1/D)."""
    ito = run("fp_ito_1d.toml")
    fick = run("fp_ito_1d.toml", 'model.form="fick"')
    assert ito.diagnostics["error_rho_max"][-1] < 1e-4
    assert fick.diagnostics["error_rho_max"][-1] > 0.05   # the Fick state against the Ito formula


def _field_2d(form, cross=0.3, cells=(24, 20), boundary="noflux"):
    mesh = Mesh([-2.0, -2.0], [2.0, 2.0], list(cells), boundary)
    D = [[lambda x1, x2: 1.0 + 0.5 * np.sin(x1) ** 2, lambda x1, x2: cross * np.cos(x1 + x2)],
         [lambda x1, x2: cross * np.cos(x1 + x2), lambda x1, x2: 0.6 + 0.2 * x1 ** 2]]
    return FokkerPlanckOperator(mesh, potential=lambda x1, x2: (x1 ** 2 + x2 ** 4) / 2,
                                drift=[lambda x1, x2: x2, lambda x1, x2: -x1],
                                diffusion=TensorField.from_callables(mesh, D), form=form)


@pytest.mark.parametrize("form", ["ito", "fick"])
@pytest.mark.parametrize("boundary", ["noflux", "periodic"])
def test_tensor_field_conserves_mass_to_round_off(form, boundary):
    """Every term is a face flux: the columns of A sum to zero (mass to round-off), in both
    forms, with cross terms, on no-flux and periodic boxes; kernel and matrix agree without
    cross terms."""
    op = _field_2d(form, boundary=boundary)
    A = op.matrix()
    w = op.mesh.cell_volume
    assert np.abs(np.asarray(A.sum(axis=0))).max() * w < 1e-12 * abs(A).max()
    rho = np.random.default_rng(0).random(op.mesh.cells)
    m0 = op.mesh.integrate(rho)
    from solvers.linear import LinearStepper
    st = LinearStepper("beuler", A, 0.05, pivot=True)
    y = rho.ravel()
    for _ in range(20):
        y = st.step(y, 0.0)
    assert abs(op.mesh.integrate(y.reshape(rho.shape)) - m0) < 1e-13
    diag = _field_2d(form, cross=0.0, boundary=boundary)
    assert not diag.has_cross_terms
    assert np.allclose(diag.apply(rho), (diag.matrix() @ rho.ravel()).reshape(rho.shape), rtol=1e-12, atol=1e-12)
    ex = diag.explicit_steps(rho, 0.9 * diag.max_stable_dt(), 30)
    assert ex.min() >= 0 and abs(op.mesh.integrate(ex) - m0) < 1e-12


def test_ito_and_fick_coincide_for_a_constant_tensor():
    mesh = Mesh([-2.0, -2.0], [2.0, 2.0], [12, 10], "noflux")
    T = [[1.0, 0.4], [0.4, 0.8]]
    const = FokkerPlanckOperator(mesh, potential=lambda x1, x2: x1 ** 2 + x2 ** 2, diffusion=np.array(T))
    for form in ("ito", "fick"):
        fld = FokkerPlanckOperator(mesh, potential=lambda x1, x2: x1 ** 2 + x2 ** 2,
                                   diffusion=TensorField.from_callables(mesh, T), form=form)
        assert abs(fld.matrix() - const.matrix()).max() < 1e-12


def test_ito_fick_relation_in_2d():
    """div(div(D rho)) = div(D grad rho) + div((div D) rho): the Ito operator's steady state is
    the Fick operator's with the extra drift -div D, to discretisation error (order 2)."""
    errs = []
    for n in (16, 32, 64):
        mesh = Mesh([-2.0, -2.0], [2.0, 2.0], [n, n], "noflux")
        D = [[lambda x1, x2: 1.0 + 0.5 * np.sin(x1) ** 2, 0.0], [0.0, lambda x1, x2: 0.6 + 0.2 * x1 ** 2]]
        f = lambda x1, x2: (x1 ** 2 + x2 ** 2) / 2  # noqa: E731
        b = [lambda x1, x2: x2, lambda x1, x2: -x1]
        ito = FokkerPlanckOperator(mesh, potential=f, drift=b, diffusion=TensorField.from_callables(mesh, D))
        # (div D)_1 = d1 D11 = sin(2 x1) / 2, (div D)_2 = d2 D22 = 0
        bf = [lambda x1, x2: x2 - 0.5 * np.sin(2 * x1), lambda x1, x2: -x1]
        fick = FokkerPlanckOperator(mesh, potential=f, drift=bf, diffusion=TensorField.from_callables(mesh, D),
                                    form="fick")
        from solvers.linear import steady_state
        w = np.full(mesh.size, mesh.cell_volume)
        r1, r2 = steady_state(ito.matrix(), w)[0], steady_state(fick.matrix(), w)[0]
        errs.append(np.sqrt(mesh.cell_volume * np.sum((r1 - r2) ** 2)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert orders.min() > 1.8, (errs, orders)


def test_spd_check_names_the_cell():
    mesh = Mesh([-2.0, -2.0], [2.0, 2.0], [8, 8], "noflux")
    bad = [[1.0, lambda x1, x2: x1], [lambda x1, x2: x1, 1.0]]   # |x1| > 1: not positive definite
    with pytest.raises(ValueError, match=r"positive definite: at cell \(0, 0\) \(x = -1.75, -1.75\)"):
        FokkerPlanckOperator(mesh, potential=lambda x1, x2: x1 ** 2, diffusion=TensorField.from_callables(mesh, bad))


@pytest.mark.parametrize("over,words", [
    ('model.diffusion=[["1", "x1"], ["x2", "1"]]', "must be symmetric"),
    ('model.diffusion=[["1", "x1"], ["x1", "1"]]', "positive definite: at cell"),
    ('model.form="stratonovich"', "form"),
])
def test_case_errors_name_the_key(over, words):
    with pytest.raises(CaseError, match=words) as e:
        pdenet.run(case_path("fp_nonisotropic.toml"), overrides=[over, "time.stepper=\"steady\""], write=False)
    assert "model." in str(e.value)


def test_particles_follow_the_form():
    """Particles of dX = b dt + sqrt(2D) dB (Ito: no correction) reach the Ito steady state,
    not the Fick one: the histogram's L1 distance to the PDE of the same form is small."""
    over = ["time.stepper=\"cn\"", "time.t_end=4.0", "time.steps=40", "time.outputs=1",
            'model.initial="exp(-2*x^2)"', "particles.count=20000", "particles.dt=0.005", "mesh.cells=[40]"]
    ito = run("fp_ito_1d.toml", *over)
    fick = run("fp_ito_1d.toml", *over, 'model.form="fick"', FICK_EXACT)
    l1, l1f = ito.diagnostics["particle_l1"][-1], fick.diagnostics["particle_l1"][-1]
    assert l1 < 0.06 and l1f < 0.06
    # the Ito particles against the Fick density: far
    assert np.abs(ito.fields["rho"][-1] - fick.fields["rho"][-1]).sum() * 0.2 > 0.15


# -- Lemma 6.44 ------------------------------------------------------------------------------
def test_lemma_6_44_against_scipy_lyapunov():
    """Random stable F and SPD D: the covariance against scipy.linalg.solve_continuous_lyapunov,
    U = Sigma^-1 symmetric, Q antisymmetric, F = (D + Q) U, all to 1e-10."""
    from scipy.linalg import solve_continuous_lyapunov

    from pdenet.fokkerplanck.nonequilibrium import linear_decomposition
    rng = np.random.default_rng(644)
    for n in (2, 3, 5):
        for _ in range(5):
            M = rng.standard_normal((n, n))
            F = M + (abs(np.linalg.eigvals(M).real).max() + 0.5) * np.eye(n)   # stable
            B = rng.standard_normal((n, n))
            D = B @ B.T + 0.1 * np.eye(n)
            T = rng.uniform(0.2, 2.0)
            out = linear_decomposition(F, D, temperature=T)
            S = solve_continuous_lyapunov(F, 2 * T * D)
            scale = np.abs(S).max()
            assert np.abs(out["covariance"] - S).max() < 1e-10 * scale
            U, Q = out["U"], out["Q"]
            assert np.abs(U - T * np.linalg.inv(S)).max() < 1e-10 * np.abs(U).max()
            assert np.abs(Q + Q.T).max() == 0.0
            assert np.abs((D + Q) @ U - F).max() < 1e-10 * np.abs(F).max()
    with pytest.raises(ValueError, match="stable"):
        linear_decomposition(-np.eye(2), np.eye(2))


# -- Example 6.43 --------------------------------------------------------------------------------
Z43 = 7.602886612094934
PHI = "((x1^2-1)^2/4 + x2^2/2)"


def test_example_6_43_normalising_constant():
    g1 = quad(lambda x: np.exp(-(x * x - 1) ** 2 / 4), -3, 3, epsabs=0, epsrel=1e-13)[0]
    g2 = quad(lambda x: np.exp(-x * x / 2), -3, 3, epsabs=0, epsrel=1e-13)[0]
    assert g1 * g2 == pytest.approx(Z43, rel=1e-12)


def _example_steady(lam, cells):
    J = "exp(-(x1^2 + x2^2)^2/4)"
    over = ['time.stepper="steady"', "particles.count=0", f"mesh.cells=[{cells}, {cells}]",
            f'exact.rho="exp(-{PHI})/{Z43}"', f'exact.phi="{PHI}"',
            f'exact.current_1="-{lam}*x2*{J}/{Z43}"', f'exact.current_2="{lam}*x1*{J}/{Z43}"']
    name = {0.5: "fp_limit_cycle_l05.toml", 2.0: "fp_limit_cycle_l2.toml"}[lam]
    return run(name, *over)


@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_example_6_43_rho_current_phi_converge_at_order_two(lam):
    """rho_ss = e^-Phi / Z, the current = lambda J_ss / Z and phi = Phi - min Phi, each to
    discretisation error with observed order ~2 (24, 48, 96 cells per side); the residual of
    div(j rho_ss) falls at order 2 too."""
    errs = {k: [] for k in ("error_rho_l2", "error_current_1_l2", "error_current_2_l2", "error_phi_l2",
                            "residual_div_j_rho")}
    for n in (24, 48, 96):
        r = _example_steady(lam, n)
        for k in errs:
            errs[k].append(r.diagnostics[k][-1])
    for k, e in errs.items():
        orders = np.log2(np.array(e[:-1]) / np.array(e[1:]))
        assert orders.min() > 1.7, (k, e, orders)
    assert errs["error_rho_l2"][-1] < 1e-3 and errs["error_phi_l2"][-1] < 1e-2


def test_example_6_43_most_likely_points_and_drift_zeros():
    """The minima of phi stay at (+-1, 0) for every lambda; the zeros of -grad f move to
    (+-0.9024, +-0.3888) for lambda = 0.5 (a root of the closed-form drift, scipy) and only the
    saddle at 0 remains for lambda = 2."""
    from scipy import optimize

    def v(x, lam):
        x1, x2 = x
        E = np.exp((1 - 2 * x1 ** 2 + 2 * x2 ** 2 - 2 * x1 ** 2 * x2 ** 2 - x2 ** 4) / 4)
        return [-(x1 ** 3 - x1) - lam * x2 * E, -x2 + lam * x1 * E]
    ref = optimize.root(v, [0.9, 0.4], args=(0.5,), tol=1e-13).x
    for lam, n_zeros in ((0.5, 3), (2.0, 1)):
        r = _example_steady(lam, 48)
        minima, zeros = (np.asarray(r.groups["analysis"][k]) for k in ("phi_minima", "drift_zeros"))
        assert len(minima) == 2 and np.allclose(np.sort(np.abs(minima[:, 0])), [1, 1], atol=5e-3)
        assert np.abs(minima[:, 1]).max() < 5e-3
        assert len(zeros) == n_zeros
        if lam == 0.5:
            assert np.min(np.linalg.norm(zeros - ref, axis=1)) < 1e-6
            assert r.attrs["critical_point_shift_max"] == pytest.approx(np.linalg.norm(ref - [1, 0]), abs=3e-3)
        else:
            assert np.linalg.norm(zeros[0]) < 1e-6


# -- phi, kl_to_steady, non-Gibbs steady states ---------------------------------------------------
def test_linear_system_phi_is_lemma_6_44_quadratic_not_f():
    """fp_nonisotropic (drift -H x, constant full D): the steady state is not the Gibbs density
    of f = x1^2/2 + x2^2 at any temperature; phi equals x^T U x / 2 with Lemma 6.44's U (the
    computed field against the closed form, shifted to min 0), and j . grad phi = 0 holds up to
    discretisation error (j = -Q U x is along the contours of phi)."""
    from pdenet.fokkerplanck.nonequilibrium import linear_decomposition
    H, D = np.diag([1.0, 2.0]), np.array([[1.0, 0.5], [0.5, 1.0]])
    U = linear_decomposition(H, D)["U"]
    U = np.array(U)
    errs, dots = [], []
    for cells in ("[48, 40]", "[96, 80]"):
        r = run("fp_nonisotropic.toml", "model.nonequilibrium=true", f"mesh.cells={cells}")
        X1, X2 = r.mesh.centres()
        phi = np.asarray(r.fields["phi"][-1])
        exact = (U[0, 0] * X1 ** 2 + 2 * U[0, 1] * X1 * X2 + U[1, 1] * X2 ** 2) / 2
        errs.append(np.abs(phi - exact)[exact < 2].max())   # where rho_ss > e^-2 rho_max
        dots.append(r.diagnostics["residual_j_dot_grad_phi"][-1])
    assert errs[1] < 0.015 and errs[0] / errs[1] > 3.5, errs
    assert dots[0] / dots[1] > 3.5, dots
    f = X1 ** 2 / 2 + X2 ** 2
    core = phi < 6.0
    # Gibbs of f at the best temperature: phi would be an affine function of f
    A = np.stack([f[core], np.ones(core.sum())], axis=1)
    resid = phi[core] - A @ np.linalg.lstsq(A, phi[core], rcond=None)[0]
    assert np.abs(resid).max() > 0.3
    # isotropic D: phi is f (Lemma 6.27), j = 0
    iso = run("fp_nonisotropic.toml", "model.nonequilibrium=true", "model.diffusion=1.0")
    X1, X2 = iso.mesh.centres()
    f = X1 ** 2 / 2 + X2 ** 2
    assert np.abs(np.asarray(iso.fields["phi"][-1]) - (f - f.min())).max() < 1e-9
    assert np.abs(iso.fields["j_1"][-1]).max() < 1e-9


@pytest.mark.parametrize("diffusion", ['["1 + 0.5*sin(x1)^2", "0.6 + 0.2*x1^2"]',
                                       '[["1.0", "0.3*exp(-x1^2)"], ["0.3*exp(-x1^2)", "0.8"]]'])
def test_kl_to_steady_is_non_increasing(diffusion):
    """Theorem 6.24: T KL(rho | rho_ss) decreases at every save for a non-gradient drift
    (Example 6.43, lambda = 2) with a non-isotropic state-dependent D (diagonal: an M-matrix, so
    the discrete KL is a Lyapunov function exactly; full tensor: the cross terms too), and the
    split kl_energetic + kl_entropic differs from it by a constant."""
    r = run("fp_limit_cycle_l2.toml", f"model.diffusion={diffusion}", "particles.count=0", "mesh.cells=[40, 40]",
            "time.steps=60", "time.t_end=6.0", "time.outputs=30")
    kl = np.asarray(r.diagnostics["kl_to_steady"])
    assert kl[0] > 1.0 and kl[-1] < 1e-3 * kl[0]
    assert np.all(np.diff(kl) <= 1e-14 * kl[0]), np.diff(kl)
    c = kl - np.asarray(r.diagnostics["kl_energetic"]) - np.asarray(r.diagnostics["kl_entropic"])
    assert np.ptp(c) < 1e-10 * max(1.0, abs(c).max())
    # and the steady state is not the Gibbs density of the potential (the drift is not -grad f)
    rho_ss = np.asarray(r.groups["analysis"]["rho_ss"])
    X1, X2 = np.meshgrid(*r.mesh.axes, indexing="ij") if not hasattr(r.mesh, "centres") else r.mesh.centres()
    g = np.exp(-((X1 ** 2 - 1) ** 2 / 4 + X2 ** 2 / 2))
    g /= g.sum()
    assert np.abs(rho_ss / rho_ss.sum() - g).sum() > 0.1


@pytest.mark.slow
def test_example_6_43_particles_agree_and_wind():
    """lambda = 2: the particle histogram agrees with the PDE density; paths wind about the
    saddle at the origin (mean > 1 turn in 10 time units); lambda = 0: no net winding."""
    n = 3000
    r2 = run("fp_limit_cycle_l2.toml", f"particles.count={n}", "mesh.cells=[48, 48]")
    X = np.asarray(r2.groups["analysis"]["particle_positions"])
    C = np.cov(X.T)
    for a, b in ((0, 0), (1, 1), (0, 1)):
        pde = r2.diagnostics[f"cov_{a + 1}{b + 1}"][-1]
        se = np.std((X[:, a] - X[:, a].mean()) * (X[:, b] - X[:, b].mean())) / np.sqrt(n)
        assert abs(C[a, b] - pde) < 4 * se + 0.01, (a, b, C[a, b], pde, se)
    for a in range(2):
        assert abs(X[:, a].mean() - r2.diagnostics[f"mean_{a + 1}"][-1]) < 4 * X[:, a].std() / np.sqrt(n) + 0.01
    w2 = np.asarray(r2.groups["analysis"]["particle_winding"])
    assert w2.mean() > 1.0 and r2.attrs["particle_winding_rate"] > 0.1
    r0 = run("fp_limit_cycle_l0.toml", f"particles.count={n}", "mesh.cells=[48, 48]")
    w0 = np.asarray(r0.groups["analysis"]["particle_winding"])
    assert abs(w0.mean()) < 4 * w0.std() / np.sqrt(w0.size) + 0.05


# -- SGD out of equilibrium ---------------------------------------------------------------------
def _sgd1_mode(lr, cells=400):
    r = run("fp_sgd_diffusion.toml", "model.nonequilibrium=true", "sgd.chains=0", 'time.stepper="steady"',
            f"mesh.cells=[{cells}]", f"sgd.lr={lr}")
    a = r.groups["analysis"]
    return float(a["sgd_minimiser"][0]), float(a["sgd_mode"][0]), float(a["sgd_mode_predicted"][0])


def test_sgd_1d_most_likely_point_is_the_theorys_not_the_minimiser():
    """One-parameter least squares with SGD's own D(theta): the most likely point of the PDE steady
    state is the root of f' + D' = 0 (Theorem 6.48 with Q = 0), not argmin f; the shift grows
    linearly with beta^-1 = lr / 2B (Remark 6.52)."""
    shifts = []
    for lr in (0.05, 0.1, 0.2):
        t_f, mode, pred = _sgd1_mode(lr)
        shift = mode - t_f
        assert abs(mode - pred) < 0.02 * abs(shift), (lr, mode, pred, t_f)
        assert abs(shift) > 1e-4
        shifts.append(shift)
    ratio = np.array(shifts) / np.array([0.05, 0.1, 0.2])
    # linear to first order (the ratio drifts by O(lr): 0.0036, 0.0034, 0.0030 per unit lr)
    assert np.all(np.diff(np.abs(shifts)) > 0) and np.ptp(ratio) < 0.25 * abs(ratio).max(), shifts


def test_sgd_2d_pde_matches_sgd_runs_and_is_not_gibbs():
    """Two-parameter least squares with features of unequal scales: SGD's own full, state-dependent
    D(theta). The PDE (Ito form) against 4000 SGD runs at t = 20: means within 4 standard errors,
    covariances within 10% (the diffusion limit is first order in lr); the steady state is not the
    Gibbs density of f at any temperature; its most likely point moves away from argmin f as lr grows."""
    r = run("fp_sgd_2d.toml")
    X = np.asarray(r.groups["analysis"]["sgd_theta"])
    C = np.cov(X.T)
    for d in range(2):
        assert abs(X[:, d].mean() - r.diagnostics[f"mean_{d + 1}"][-1]) < 4 * X[:, d].std() / np.sqrt(len(X)) + 1e-3
    for a, b in ((0, 0), (1, 1)):
        assert abs(C[a, b] / r.diagnostics[f"cov_{a + 1}{b + 1}"][-1] - 1) < 0.1
    rho_ss = np.asarray(r.groups["analysis"]["rho_ss"])
    phi = -np.log(np.maximum(rho_ss, 1e-300))
    X1, X2 = r.mesh.centres()
    from pdenet.fokkerplanck.sgd2d import SGDProblem2
    sgd = SGDProblem2("linear", 400, [1.0, 1.0], 0.5, 0, [1.0, 0.5], 0.5)
    f = sgd.f(np.stack([X1.ravel(), X2.ravel()], axis=1)).reshape(X1.shape)
    core = rho_ss > 1e-3 * rho_ss.max()
    A = np.stack([f[core], np.ones(core.sum())], axis=1)
    resid = phi[core] - A @ np.linalg.lstsq(A, phi[core], rcond=None)[0]
    assert np.abs(resid).max() > 0.5
    shifts = []
    for lr in (0.1, 0.2):
        s = run("fp_sgd_2d.toml", "sgd.chains=0", 'time.stepper="steady"', f"sgd.lr={lr}",
                "mesh.lower=[0.5, 0.6]", "mesh.upper=[1.4, 1.7]", "mesh.cells=[72, 88]")
        shifts.append(np.asarray(s.groups["analysis"]["sgd_mode_shift"]))
    n1, n2 = np.linalg.norm(shifts[0]), np.linalg.norm(shifts[1])
    assert n1 > 0.005 and 1.5 < n2 / n1 < 2.2, shifts


@pytest.mark.parametrize("stepper", ["explicit", "cn"])
def test_full_tensor_field_through_the_model_conserves_mass(stepper):
    """A case with a state-dependent full tensor runs with the explicit (automatic step, sparse
    matrix) and implicit steppers: mass 1 to round-off at every save, and the density approaches
    the steady solve of the same operator."""
    D = '[["1 + 0.5*sin(x1)^2", "0.3*exp(-x1^2)"], ["0.3*exp(-x1^2)", "0.8 + 0.2*tanh(x2)"]]'
    import os
    import tomllib

    from pdenet.case import build_case
    with open(case_path("fp_limit_cycle_l2.toml"), "rb") as fh:
        raw = tomllib.load(fh)
    raw["time"] = {"stepper": stepper, "t_end": 8.0, "outputs": 4, **({"steps": 80} if stepper == "cn" else {})}
    case = build_case(raw, case_path("fp_limit_cycle_l2.toml"), os.path.dirname(case_path("fp_limit_cycle_l2.toml")))
    case = case.with_overrides([f"model.diffusion={D}", "particles.count=0", "mesh.cells=[24, 24]"])
    r = pdenet.run(case, write=False)
    assert np.abs(np.asarray(r.diagnostics["mass"]) - 1).max() < 1e-12
    assert r.diagnostics["kl_to_steady"][-1] < 1e-4 * r.diagnostics["kl_to_steady"][0]


@pytest.mark.petsc
def test_petsc_gamg_steady_state_with_a_tensor_field():
    """backend = "petsc" (GMRES + GAMG) solves the D(x) full-tensor steady state to the built-in
    LU's answer."""
    pytest.importorskip("petsc4py")
    D = '[["1 + 0.5*sin(x1)^2", "0.3*exp(-x1^2)"], ["0.3*exp(-x1^2)", "0.8 + 0.2*tanh(x2)"]]'
    over = [f"model.diffusion={D}", "particles.count=0", "mesh.cells=[48, 48]", 'time.stepper="steady"']
    a = run("fp_limit_cycle_l2.toml", *over)
    b = run("fp_limit_cycle_l2.toml", *over, 'solver.backend="petsc"')
    ra, rb = np.asarray(a.fields["rho"][-1]), np.asarray(b.fields["rho"][-1])
    assert np.abs(ra - rb).max() < 1e-8 * ra.max()
    assert np.allclose(a.fields["phi"][-1], b.fields["phi"][-1], atol=1e-6)
