"""The hjb model's forward densities by the Fokker-Planck finite-volume scheme: against the
particle histograms (Monte Carlo error), against the exact Gaussian law of a linear-quadratic
problem, mass, positivity, and the model.density key."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from conftest import case_path
from pdenet import load_case
from pdenet.errors import CaseError
from pdenet.hjb.density import ForwardDensity, histogram_noise_l1, initial_density
from pdenet.mesh import Mesh
from pdenet.runner import run

SMALL = ["model.particles=3000", "model.particle_steps=200", "mesh.cells=[120]"]


def _check_mass_and_sign(r):
    for tag in ("controlled", "uncontrolled"):
        rho = r.fields[f"rho_{tag}"]
        assert np.all(rho >= 0.0)
        mass = rho.reshape(len(rho), -1).sum(1) * r.mesh.cell_volume
        assert np.max(np.abs(mass - 1.0)) < 1e-12
        assert np.max(np.abs(np.asarray(r.diagnostics[f"mass_rho_{tag}"]) - 1.0)) < 1e-12


def test_pde_density_matches_the_particles_and_the_wrong_sign_does_not():
    case = load_case(case_path("hjb_double_well.toml"), SMALL)
    r = run(case, write=False)
    D, n = r.diagnostics, 3000
    _check_mass_and_sign(r)
    pairs = (("controlled", "rho"), ("uncontrolled", "rho_sgd"))
    for tag, hist in pairs:
        pde_mean = np.asarray(D[f"mean_x_{tag}_pde"])
        part_mean = np.asarray(D[f"mean_x_{tag}_particles"])
        se = np.asarray(D[f"mean_x_{tag}_stderr"])
        assert np.all(np.abs(part_mean - pde_mean)[1:] < 3 * se[1:]), (tag, part_mean, pde_mean, se)
        # L1(histogram, PDE) against the exact expected L1 of an n-particle histogram of the PDE law
        h = r.mesh.spacing[0]
        for k in range(1, len(r.time)):
            l1 = np.abs(r.fields[hist][k] - r.fields[f"rho_{tag}"][k]).sum() * h
            noise = histogram_noise_l1(r.fields[f"rho_{tag}"][k], r.mesh, n)
            assert abs(l1 - D[f"l1_{tag}"][k]) < 1e-12 and abs(noise - D[f"l1_noise_{tag}"][k]) < 1e-12
            assert 0.03 < noise < 0.2 and l1 < 1.5 * noise, (tag, k, l1, noise)
    assert r.attrs["density_mean_max_z"] < 3 and r.attrs["density_l1_over_noise_max"] < 1.5
    # the comparison discriminates: the two processes' means differ by many standard errors at T
    se = D["mean_x_controlled_stderr"][-1]
    assert D["mean_x_uncontrolled_pde"][-1] - D["mean_x_controlled_pde"][-1] > 10 * se
    # negative control: the density under the reversed feedback (drift -(grad f - grad u)) is
    # far from the controlled particles
    model = case.model_cls(case)
    K = 200
    U, _ = model._backward(model.hjb, K, lambda k: None)
    fd = ForwardDensity(model.mesh, model.f.on_mesh(model.mesh), model.nu)
    rho = initial_density(model.mesh, model.x0, 0.0)
    for k in range(K):
        rho = fd.advance(rho, model.T / K, -U[k])
    x = model.mesh.axes[0]
    wrong_mean = float((rho * x).sum() * model.mesh.spacing[0])
    assert abs(wrong_mean - D["mean_x_controlled_particles"][-1]) > 10 * se
    l1 = np.abs(r.fields["rho"][-1] - rho).sum() * model.mesh.spacing[0]
    assert l1 > 2 * histogram_noise_l1(rho, model.mesh, n)


def _lq_exact(ts, a, b, nu, T, x0, s0):
    """f = a x^2/2, V = b x^2/2: u = P(t) x^2/2 + c(t), P' = 2aP + P^2, P(T) = b; the controlled
    law is Gaussian with m' = -(a + P) m, s' = -2(a + P) s + 2 nu."""
    back = solve_ivp(lambda t, y: [2 * a * y[0] + y[0] ** 2], [T, 0], [b], rtol=1e-12, atol=1e-14,
                     dense_output=True)
    P = lambda t: back.sol(t)[0]  # noqa: E731
    fw = solve_ivp(lambda t, y: [-(a + P(t)) * y[0], -2 * (a + P(t)) * y[1] + 2 * nu], [0, T],
                   [x0, s0 ** 2], t_eval=ts, rtol=1e-12, atol=1e-14)
    return fw.y


@pytest.mark.parametrize("stepper,tol_mean,tol_var", [("explicit", 2.5e-3, 6e-4), ("beuler", 6e-3, 2.5e-3)])
def test_pde_density_of_a_linear_quadratic_problem_is_the_exact_gaussian(stepper, tol_mean, tol_var):
    a, b, nu, T, x0, s0 = 1.0, 2.0, 0.1, 1.0, 0.8, 0.2
    case = load_case(case_path("hjb_double_well.toml"), [
        f'model.f="{a}*x^2/2"', f'model.V="{b}*x^2/2"', f"model.nu={nu}", f"time.t_end={T}",
        f"model.x0={x0}", f"model.spread={s0}", "mesh.lower=[-3.0]", "mesh.upper=[3.0]",
        "mesh.cells=[150]", "model.particle_steps=200", 'model.density="pde"',
        f'model.density_stepper="{stepper}"'])
    r = run(case, write=False)
    assert "rho" not in r.fields and "rho_sgd" not in r.fields and "l1_controlled" not in r.diagnostics
    _check_mass_and_sign(r)
    x, h = r.mesh.axes[0], r.mesh.spacing[0]
    rc, ru = r.fields["rho_controlled"], r.fields["rho_uncontrolled"]
    m = (rc * x).sum(1) * h
    var = (rc * x ** 2).sum(1) * h - m ** 2
    m_ex, var_ex = _lq_exact(r.time, a, b, nu, T, x0, s0)
    assert np.max(np.abs(m - m_ex)) < tol_mean, np.abs(m - m_ex)
    assert np.max(np.abs(var - var_ex)) < tol_var, np.abs(var - var_ex)
    assert np.allclose(m, r.diagnostics["mean_x_controlled_pde"], atol=1e-14)
    # the control matters: the uncontrolled OU mean x0 e^{-a t} is far from the controlled one
    mu = (ru * x).sum(1) * h
    assert np.max(np.abs(mu - x0 * np.exp(-a * r.time))) < tol_mean
    assert np.max(np.abs(mu - m)) > 0.1


def test_two_dimensional_pde_density_matches_the_particles():
    case = load_case(case_path("hjb_double_well_2d.toml"), ["model.particles=2000", "model.particle_steps=100",
                                                              "mesh.cells=[32, 32]"])
    r = run(case, write=False)
    _check_mass_and_sign(r)
    assert r.fields["rho_controlled"].shape == (5, 32, 32)
    assert r.attrs["density_mean_max_z"] < 3
    assert r.attrs["density_l1_over_noise_max"] < 1.5


def test_density_key_selects_the_fields():
    r = run(load_case(case_path("hjb_double_well.toml"),
                      ["model.particles=200", "model.particle_steps=20", "mesh.cells=[40]",
                       'model.density="particles"']), write=False)
    assert {"rho", "rho_sgd"} <= set(r.fields) and "rho_controlled" not in r.fields
    assert "mass_rho_controlled" not in r.diagnostics and "density_steps" not in r.attrs
    case = load_case(case_path("hjb_double_well.toml"),
                     ["model.particles=200", "model.particle_steps=20", "mesh.cells=[40]",
                      'model.density="particles"', 'output.fields=["u", "rho_controlled"]'])
    with pytest.raises(CaseError, match="rho_controlled.*model.density"):
        run(case, write=False)
    with pytest.raises(CaseError, match="density"):
        load_case(case_path("hjb_double_well.toml"), ['model.density="histogram"'])


def test_initial_density_mass_and_mean():
    m = Mesh([-1.0, 0.0], [1.0, 2.0], [20, 10], [["noflux", "noflux"], "periodic"])
    for x0, spread in (([0.33, 1.95], 0.0), ([0.1, 0.7], 0.15)):
        rho = initial_density(m, np.array(x0), spread)
        assert abs(m.integrate(rho) - 1.0) < 1e-14 and np.all(rho >= 0)
        X, _ = m.centres()
        assert abs(m.integrate(rho * X) - x0[0]) < 1e-12 + 0.01 * spread
    # the periodic axis wraps the point mass: 1.95 lies between the last and the first cell
    rho = initial_density(m, np.array([0.33, 1.95]), 0.0)
    assert rho[:, 0].sum() > 0 and rho[:, -1].sum() > 0


def test_periodic_pde_density_matches_the_wrapped_particles():
    # on a periodic mesh the particles are wrapped onto the torus for the histograms and means
    case = load_case(case_path("hjb_double_well.toml"), [
        'model.f="1 - cos(x) + 0.3*sin(x)"', 'model.V="1 - cos(x) + 0.3*sin(x)"',
        "mesh.lower=[-3.141592653589793]", "mesh.upper=[3.141592653589793]", 'mesh.boundary="periodic"',
        "mesh.cells=[64]", "model.x0=2.5", "model.nu=0.5", "time.t_end=3", "model.particles=2000",
        "model.particle_steps=150"])
    r = run(case, write=False)
    _check_mass_and_sign(r)
    # mass crosses the periodic seam: the mean moves from 2.5 through the wrap to below 0
    assert r.diagnostics["mean_x_controlled_pde"][-1] < 0
    assert r.attrs["density_mean_max_z"] < 3 and r.attrs["density_l1_over_noise_max"] < 1.5
