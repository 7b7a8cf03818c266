"""The fokker-planck numerics built from expressions (pdenet.fokkerplanck.coefficients) and the
steppers as march systems (pdenet.fokkerplanck.systems): the SDE drift -grad f + b + div D and
noise at points, plain ValueErrors, and chunked marching equal to one go."""
import numpy as np
import pytest

from pdenet.expr import Expression
from pdenet.fokkerplanck.coefficients import Coefficients, Diffusion, Drift, Potential
from pdenet.fokkerplanck.systems import ExplicitSystem, ImplicitSystem
from pdenet.mesh import Mesh
from solvers.linear import LinearStepper
from solvers.march import SaveSchedule, march

NAMES = ("x1", "x2")


def expr(text, t=False):
    return Expression(text, NAMES + (("t",) if t else ()))


def coefficients(D, form="ito"):
    mesh = Mesh([-2, -2], [2, 2], [16, 16], "noflux")
    diffusion = Diffusion.parse(D, 2, lambda e: expr(e, t=True))
    return Coefficients(mesh, Potential.from_expression(expr("(x1^2 + 3*x2^2)/2"), mesh),
                        Drift.from_expressions(["x2", "-x1"], expr, mesh), diffusion, form=form)


def test_particle_velocity_is_minus_grad_f_plus_b_plus_div_D():
    """Fick form: the SDE's drift carries div D; Ito form: it does not."""
    X = np.random.default_rng(0).uniform(-1.5, 1.5, (50, 2))
    ito = coefficients(["1 + x1^2 + t", "2"]).velocity(X, 0.3)
    assert np.allclose(ito[:, 0], -X[:, 0] + X[:, 1], atol=1e-8)
    co = coefficients(["1 + x1^2 + t", "2"], form="fick")
    X = np.random.default_rng(0).uniform(-1.5, 1.5, (50, 2))
    v = co.velocity(X, 0.3)
    x1, x2 = X[:, 0], X[:, 1]
    assert np.allclose(v[:, 0], -x1 + x2 + 2 * x1, atol=1e-8)
    assert np.allclose(v[:, 1], -3 * x2 - x1, atol=1e-8)
    dW = np.ones((50, 2))
    assert np.allclose(co.noise(X, 0.3, dW), np.sqrt(2 * np.stack([1 + x1 ** 2 + 0.3, 2 + 0 * x1], axis=1)))
    assert co.diffusion.in_time and co.diffusion.in_space


def test_constant_and_tensor_noise_and_scalar_D():
    X = np.zeros((3, 2))
    dW = np.random.default_rng(1).standard_normal((3, 2))
    co = coefficients([[1.0, 0.5], [0.5, 1.0]])
    S = np.linalg.cholesky(2 * np.array([[1.0, 0.5], [0.5, 1.0]]))
    assert np.allclose(co.noise(X, 0.0, dW), dW @ S.T)
    assert co.diffusion.scalar(co.mesh, 0.0) is None
    co = coefficients(0.5)
    assert np.allclose(co.noise(X, 0.0, dW), dW) and co.diffusion.scalar(co.mesh, 0.0) == 0.5
    assert not co.operator(0.0).has_cross_terms


@pytest.mark.parametrize("D,words", [
    (True, "expected a number"), (-1.0, "must be positive"), ([[1.0, 0.5]], "a tensor is an 2 x 2"),
    ([1.0, [2.0]], "entries are numbers or expressions"), ([1.0, 2.0, 3.0], "a list of 2 entries"),
])
def test_diffusion_errors_are_plain_value_errors(D, words):
    with pytest.raises(ValueError, match=words):
        Diffusion.parse(D, 2, lambda e: expr(str(e), t=True))


def test_drift_component_count_is_a_value_error():
    mesh = Mesh([-2, -2], [2, 2], [4, 4], "noflux")
    with pytest.raises(ValueError, match="has 1 components, the mesh has 2 dimensions"):
        Drift.from_expressions(["x1"], expr, mesh)


def test_systems_march_in_chunks_as_in_one_go():
    co = coefficients(["0.5 + 0.1*t", "0.5"])
    op = co.operator(0.0)
    rho0 = np.exp(-(co.mesh.centres()[0] ** 2 + co.mesh.centres()[1] ** 2))
    dt = 0.5 * min(co.operator(t).max_stable_dt() for t in (0.0, 0.2))
    # explicit with D(t): the operator at the start of every step
    sys_ = ExplicitSystem(op, dt, co.operator)
    chunked = march(sys_, rho0, SaveSchedule.every(20, dt, 3))
    y = rho0
    for n in range(20):
        y = co.operator(n * dt).explicit_steps(y, dt, 1)
    assert np.array_equal(chunked, y)
    # implicit (BDF2 keeps its history across chunks)
    imp = ImplicitSystem("bdf2", op.matrix(), 0.05, pivot=False)
    chunked = march(imp, rho0, SaveSchedule.every(10, 0.05, 4))
    st, y = LinearStepper("bdf2", op.matrix(), 0.05, pivot=False), rho0.ravel().copy()
    for n in range(10):
        y = st.step(y, n * 0.05)
    assert np.array_equal(chunked.ravel(), y) and imp.summary() == {"factorisations": st.factorisations}


def test_full_tensor_field_noise_and_divergence():
    """A state-dependent full tensor: noise sqrt(2 D(X)) by Cholesky per particle (its covariance
    2 D), the Fick drift sum_e d_e D_de."""
    D = [["1 + x1^2", "0.3*x2"], ["0.3*x2", "4 + x1*x2"]]
    X = np.random.default_rng(2).uniform(-0.5, 0.5, (40, 2))
    x1, x2 = X[:, 0], X[:, 1]
    fick, ito = coefficients(D, form="fick"), coefficients(D)
    v0 = ito.velocity(X, 0.0)
    v = fick.velocity(X, 0.0)
    assert np.allclose(v[:, 0] - v0[:, 0], 2 * x1 + 0.3, atol=1e-7)
    assert np.allclose(v[:, 1] - v0[:, 1], 0.0 + x1, atol=1e-7)
    E = np.eye(2)
    cols = [ito.noise(X, 0.0, np.tile(E[k], (40, 1))) for k in range(2)]
    L = np.stack(cols, axis=2)     # (n, 2, 2): the matrix S with S S^T = 2 D
    M = np.einsum("nab,ncb->nac", L, L)
    assert np.allclose(M[:, 0, 0], 2 * (1 + x1 ** 2)) and np.allclose(M[:, 0, 1], 0.6 * x2)
    assert np.allclose(M[:, 1, 1], 2 * (4 + x1 * x2))
    assert ito.operator(0.0).has_cross_terms and ito.diffusion.in_space
