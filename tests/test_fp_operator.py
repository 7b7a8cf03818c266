"""Fokker-Planck finite-volume operator: Bernoulli function, exact discrete Gibbs steady state,
conservation, kernel = matrix, cross terms, current, and the linear steppers of solvers.linear."""
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from pdenet.fokkerplanck import FokkerPlanckOperator, bernoulli
from pdenet.mesh import Mesh
from solvers.linear import LinearStepper, solve_backward, steady_state


def test_bernoulli_matches_definition_and_series():
    z = np.concatenate([np.linspace(-30, 30, 601), np.logspace(-12, -1, 23), -np.logspace(-12, -1, 23), [0.0]])
    ref = np.array([1.0 if v == 0 else float(v) / np.expm1(float(v)) for v in z])
    # the direct formula loses digits near 0; compare against extended precision there
    ref_ld = np.array([1.0 if v == 0 else float(np.longdouble(v) / np.expm1(np.longdouble(v))) for v in z])
    B = bernoulli(z)
    assert np.all(np.abs(B - ref_ld) <= 2e-15 * np.abs(ref_ld) + 1e-300)
    assert np.allclose(B, ref, rtol=1e-9)
    # B(-z) = B(z) + z (the identity behind the exact Gibbs steady state), and extremes
    assert np.allclose(bernoulli(-z), B + z, rtol=1e-13, atol=1e-13)
    assert bernoulli(np.array([800.0]))[0] == 0.0 and bernoulli(np.array([-800.0]))[0] == 800.0


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_discrete_gibbs_is_exact_steady_state(dims):
    lower, upper = [-2.0] * dims, [2.0] * dims
    cells = [40, 24, 10][:dims]
    m = Mesh(lower, upper, cells, "noflux")
    f = lambda *x: sum((xi ** 2 - 1) ** 2 / 4 + 0.3 * xi for xi in x) + (x[0] * x[-1] if dims > 1 else 0)  # noqa
    # D = 0.5: a moderate barrier, so the null vector is well conditioned (the error of a
    # computed null vector is its residual over the spectral gap)
    op = FokkerPlanckOperator(m, potential=f, diffusion=0.5)
    A = op.matrix()
    g = op.gibbs()
    # A g = 0 to round-off relative to the size of the terms
    assert np.abs(A @ g.ravel()).max() <= 1e-12 * abs(A).max() * g.max()
    p, resid = steady_state(A, np.full(m.size, m.cell_volume))
    assert np.abs(p - g.ravel()).max() <= 1e-12 * g.max()
    # columns sum to zero: mass conservation
    assert np.abs(np.asarray(A.sum(axis=0))).max() <= 1e-12 * abs(A).max()
    # the current of the Gibbs density vanishes
    assert np.abs(op.current(g)).max() <= 1e-12 * g.max() * abs(A).max()


def test_kernel_equals_matrix_all_boundaries(rng):
    m = Mesh([0, 0, 0], [1, 2, 1], [5, 6, 7], [["dirichlet", "noflux"], "periodic", ["noflux", "dirichlet"]])
    op = FokkerPlanckOperator(m, potential=lambda x, y, z: x * y + np.sin(np.pi * y) + z ** 2,
                              drift=[lambda x, y, z: 0.3 + 0 * x, lambda x, y, z: x - z, lambda x, y, z: y],
                              diffusion=[0.3, lambda x, y, z: 0.5 + 0.1 * x, 0.7])
    r = rng.random(m.cells)
    A = op.matrix()
    assert np.allclose(op.apply(r).ravel(), A @ r.ravel(), rtol=1e-13, atol=1e-12)
    dt = 0.5 * op.max_stable_dt()
    y = r.ravel()
    for _ in range(4):
        y = y + dt * (A @ y)
    assert np.allclose(op.explicit_steps(r, dt, 4).ravel(), y, rtol=1e-13, atol=1e-13)
    # the mass lost per unit time is the outflow through the absorbing faces only (>= 0)
    loss = -(m.cell_volume * np.asarray(A.sum(axis=0)).ravel())
    assert loss.min() >= -1e-13
    interior = np.zeros(m.cells, dtype=bool)
    interior[1:-1, :, 1:-1] = True
    assert np.abs(loss.reshape(m.cells)[interior]).max() <= 1e-12


def test_tensor_cross_terms_conservative_and_match_fluxes(rng):
    m = Mesh([-2, -2], [2, 2], [12, 14], ["periodic", "noflux"])
    op = FokkerPlanckOperator(m, potential=lambda x, y: np.cos(np.pi * x / 2) + y ** 2,
                              diffusion=[[1.0, 0.4], [0.4, 0.8]])
    A = op.matrix()
    assert op.has_cross_terms
    assert np.abs(np.asarray(A.sum(axis=0))).max() <= 1e-12 * abs(A).max()
    r = rng.random(m.cells)
    J = op.face_fluxes(r)
    div = -(np.diff(J[0], axis=0) / m.spacing[0] + np.diff(J[1], axis=1) / m.spacing[1])
    assert np.allclose(div.ravel(), A @ r.ravel(), atol=1e-12)
    # a linear density in y has d_y rho = 1 in the interior: the cross flux in x is -D_xy
    lin = np.broadcast_to(m.centres()[1], m.cells)
    op0 = FokkerPlanckOperator(m, potential=None, drift=[0.0 * np.ones((13, 14)), np.zeros((12, 15))],
                               diffusion=[[1.0, 0.4], [0.4, 0.8]])
    Jx = op0.face_fluxes(lin)[0]
    assert np.allclose(Jx[1:-1, 1:-1], -0.4, atol=1e-12)


def test_bad_diffusion_rejected():
    # the numerics raise plain ValueErrors; the model names the case key (test_fp_model)
    m = Mesh([0, 0], [1, 1], [4, 4], "noflux")
    with pytest.raises(ValueError, match="symmetric"):
        FokkerPlanckOperator(m, potential=np.zeros((4, 4)), diffusion=[[1, 0.5], [0.2, 1]])
    with pytest.raises(ValueError, match="positive definite"):
        FokkerPlanckOperator(m, potential=np.zeros((4, 4)), diffusion=[[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="noflux, periodic or dirichlet"):
        FokkerPlanckOperator(Mesh([0], [1], [4], {"kind": "dirichlet", "value": 1.0}), potential=np.zeros(4))


def _random_generator(n, rng):
    A = sp.random(n, n, density=0.3, random_state=1, format="csr")
    A.data = rng.random(A.data.size)
    A = A - sp.diags(np.asarray(A.sum(axis=0)).ravel())
    return sp.csr_matrix(A)


@pytest.mark.parametrize("name,order", [("beuler", 1), ("cn", 2), ("bdf2", 2)])
def test_linear_steppers_orders(name, order, rng):
    A = _random_generator(12, rng)
    y0 = rng.random(12)
    T = 1.0
    exact = sla.expm(T * A.toarray()) @ y0
    errs = []
    for n in (10, 20, 40):
        st = LinearStepper(name, A, T / n)
        y = y0
        for k in range(n):
            y = st.step(y, k * T / n)
        errs.append(np.abs(y - exact).max())
        assert st.factorisations == (1 if name != "bdf2" else 2)
    p = np.log2(errs[1] / errs[2])
    assert abs(p - order) < 0.15, errs


def test_linear_stepper_time_dependent_cn_order(rng):
    A = _random_generator(8, rng)
    y0 = rng.random(8)

    def M(t):
        return (1.0 + 0.5 * np.sin(t)) * A
    # exact: A(t) = a(t) A commute, y(T) = expm((int a) A) y0
    T = 1.0
    exact = sla.expm((T + 0.5 * (1 - np.cos(T))) * A.toarray()) @ y0
    errs = []
    for n in (10, 20):
        st = LinearStepper("cn", M, T / n)
        y = y0
        for k in range(n):
            y = st.step(y, k * T / n)
        errs.append(np.abs(y - exact).max())
    assert abs(np.log2(errs[0] / errs[1]) - 2) < 0.2


def test_solve_backward_matches_dense(rng):
    A = _random_generator(10, rng).toarray()
    active = np.ones(10, bool)
    active[[2, 7]] = False
    u = solve_backward(sp.csr_matrix(A), -np.ones(10), active)
    idx = np.flatnonzero(active)
    ref = np.linalg.solve(A.T[np.ix_(idx, idx)], -np.ones(idx.size))
    assert np.allclose(u[idx], ref) and np.all(u[~active] == 0)


def test_bench_workers_report_time_and_conserve_mass(capsys, tmp_path, monkeypatch):
    import json

    from pdenet.bench.grids import fp_worker

    monkeypatch.setenv("PDENET_BENCH_OUT", str(tmp_path))
    for kind in ("pdenet-explicit", "pdenet-implicit", "stream"):
        fp_worker(kind, "quick", 1)
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        if kind == "stream":
            assert out["bandwidth_gbs"]["dram"] > 0
        else:
            assert out["median_s"] > 0 and abs(out["mass"] - 1) < 1e-12
    ex = np.load(tmp_path / "fp_pdenet-explicit.npy")
    assert ex.shape == (64, 64) and ex.min() >= 0
