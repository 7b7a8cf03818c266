"""pdenet's discrete adjoint of Crank-Nicolson agrees with PETSc's own TS adjoint
(TSTHETA endpoint, setCostGradients/adjointSolve) to 1e-8 relative at tight SNES/KSP
tolerances; the check would see a wrong scheme (explicit Euler, PETSc's implicit midpoint rule)."""
import numpy as np
import pytest

from netfactory import make_net
from solvers import petsc_backend as pb
from solvers.errors import NumericalError

HAVE_PETSC, PETSC_WHY = pb.available()
pytestmark = [pytest.mark.petsc,
              pytest.mark.skipif(not HAVE_PETSC, reason=f"TS adjoint: {PETSC_WHY}")]


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# -- the generic wrapper on a linear system with a closed-form CN solution --------------------
@pytest.mark.parametrize("sparse", [False, True])
def test_ts_adjoint_linear_system_exact(sparse):
    """y' = -p A y, Phi = c . y(T): CN gives y_T = R(p)^L y0 with R = (I + s A)^{-1}(I - s A), s = p dt/2."""
    import scipy.sparse as sp

    from solvers.petsc_ts import ts_adjoint

    A = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.5, -1.0, 3.0]])
    p, dt, L = 0.8, 0.05, 12
    y0, c = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0, -0.7])
    jac = (lambda t, y: sp.csr_matrix(-p * A)) if sparse else (lambda t, y: -p * A)
    res = ts_adjoint(lambda t, y: -p * (A @ y), jac, y0, dt, L, terminal_gradient=lambda y: c,
                     jacobian_p=lambda t, y: (-(A @ y)).reshape(3, 1), n_params=1)

    def R(p):
        s = 0.5 * p * dt
        return np.linalg.solve(np.eye(3) + s * A, np.eye(3) - s * A)

    RL = np.linalg.matrix_power(R(p), L)
    assert res.info["ts_type"] == "cn" and res.info["steps"] == L
    assert res.info["theta"] == 0.5 and res.info["endpoint"]
    assert rel(res.y_final, RL @ y0) < 1e-13
    assert rel(res.grad_y0, RL.T @ c) < 1e-13
    eps = 1e-6   # dPhi/dp by a central difference of the closed form (its error ~ eps^2)
    dphi = (c @ np.linalg.matrix_power(R(p + eps), L) @ y0 - c @ np.linalg.matrix_power(R(p - eps), L) @ y0) / (2 * eps)
    assert abs(res.grad_p[0] - dphi) < 1e-8 * abs(dphi)
    fwd = ts_adjoint(lambda t, y: -p * (A @ y), jac, y0, dt, L)   # forward only
    assert fwd.grad_y0 is None and np.array_equal(fwd.y_final, res.y_final)


def test_ts_options_layering_and_failure():
    """Options: DEFAULTS < options < command line; none leaks into PETSc's database; a TS that cannot
    take its steps is a NumericalError."""
    from solvers.petsc_ts import ts_adjoint

    args = (lambda t, y: -y ** 3, lambda t, y: np.diag(-3 * y ** 2), np.array([1.0, 2.0]), 0.1, 5)
    assert ts_adjoint(*args, options="-ts_type beuler").info["ts_type"] == "beuler"
    pb.set_command_line_options("-ts_type rk")
    try:
        assert ts_adjoint(*args, options="-ts_type beuler").info["ts_type"] == "rk"
    finally:
        pb.set_command_line_options([])
    assert not pb.petsc().Options().hasName("ts_type")
    with pytest.raises(NumericalError, match="DIVERGED_NONLINEAR_SOLVE"):
        ts_adjoint(*args, options="-snes_max_it 1 -snes_atol 1e-300 -snes_rtol 1e-300 -snes_stol 0 "
                                  "-ts_max_snes_failures 1")


# -- the network PDE: our discrete adjoint against PETSc's -----------------------------------
def network(stepper="cn", intervals=1):
    """8 label cells, 3 samples in one state vector, 16 steps, dense kernel, tanh, identity-head L2."""
    rng = np.random.default_rng(3)
    return make_net(rng, stepper=stepper, cells=(8,), steps=16, intervals=intervals, samples=3, t_end=1.0,
                    scale=2.0)


def report(label, J, grad, fT, g0, Jp, gradp, fTp, g0p):
    """The measured agreement (shown by pytest -s; quoted in docs/parallel.md)."""
    print(f"\n{label}: state {rel(fTp, fT):.1e} loss {abs(Jp - J) / abs(J):.1e} "
          f"a {rel(gradp['a'], grad['a']):.1e} b {rel(gradp['b'], grad['b']):.1e} f0 {rel(g0p, g0):.1e}")


def ours(net, f0, target):
    lam = {}
    J, grad, _, fT = net.loss_and_gradient(f0, target, on_costate=lambda n, l: lam.setdefault(n, l.copy()))
    return J, grad, fT, lam[0]


@pytest.fixture(scope="module")
def petsc_cn():
    from pdenet.network.petsc_adjoint import ts_loss_and_gradient

    net, f0, target = network("cn")
    return ts_loss_and_gradient(net, f0, target)


def test_cn_gradient_matches_petsc_ts_adjoint(petsc_cn):
    net, f0, target = network("cn")
    J, grad, fT, g0 = ours(net, f0, target)
    Jp, gradp, fTp, g0p, info = petsc_cn
    report("cn vs PETSc -ts_type cn", J, grad, fT, g0, Jp, gradp, fTp, g0p)
    assert info["ts_type"] == "cn" and info["theta"] == 0.5 and info["endpoint"] and info["steps"] == 16
    assert info["snes_iterations"] > 16        # nonlinear: Newton took more than one iteration a step
    assert rel(fTp, fT) < 1e-12
    assert abs(Jp - J) < 1e-12 * abs(J)
    for name in ("a", "b"):
        assert rel(gradp[name], grad[name]) < 1e-8, name
    assert rel(g0p, g0) < 1e-8
    # the head (identity) has no parameters; both give the same keys
    assert set(gradp) == set(grad)


def test_cross_check_sees_a_different_scheme(petsc_cn):
    """Explicit Euler's exact gradient, and PETSc's theta = 1/2 without end points (the implicit
    midpoint rule, which -ts_type theta means), differ from the CN gradients by far more than 1e-8."""
    from pdenet.network.petsc_adjoint import ts_loss_and_gradient

    Jp, gradp, fTp, g0p, _ = petsc_cn
    net, f0, target = network("euler")
    J, grad_euler, fT, g0 = ours(net, f0, target)
    report("euler vs PETSc -ts_type cn", J, grad_euler, fT, g0, Jp, gradp, fTp, g0p)
    for name in ("a", "b"):
        assert rel(grad_euler[name], gradp[name]) > 1e-3, name
    net, f0, target = network("cn")
    Jm, grad_mid, fTm, g0m, info = ts_loss_and_gradient(net, f0, target, "-ts_type theta")
    report("PETSc -ts_type theta (midpoint) vs PETSc cn", Jp, gradp, fTp, g0p, Jm, grad_mid, fTm, g0m)
    assert info["theta"] == 0.5 and not info["endpoint"]
    assert rel(grad_mid["b"], gradp["b"]) > 1e-5


@pytest.mark.parametrize("stepper, options", [
    ("beuler", "-ts_type beuler"),
    ("theta", "-ts_type theta -ts_theta_theta 0.7 -ts_theta_endpoint"),
    ("rk4", "-ts_type rk -ts_rk_type 4"),
])
def test_other_schemes_match_petsc(stepper, options):
    from pdenet.network.petsc_adjoint import ts_loss_and_gradient
    from solvers import make_stepper

    net, f0, target = network("cn")
    net.stepper = make_stepper(stepper, theta=0.7)
    J, grad, fT, g0 = ours(net, f0, target)
    Jp, gradp, fTp, g0p, _ = ts_loss_and_gradient(net, f0, target, options)
    report(f"{stepper} vs PETSc {options}", J, grad, fT, g0, Jp, gradp, fTp, g0p)
    assert rel(fTp, fT) < 1e-11
    assert abs(Jp - J) < 1e-11 * abs(J)
    for name in ("a", "b"):
        assert rel(gradp[name], grad[name]) < 1e-8, name
    assert rel(g0p, g0) < 1e-8


def test_needs_one_control_interval():
    from pdenet.network.petsc_adjoint import ts_loss_and_gradient

    net, f0, target = network("cn", intervals=2)
    with pytest.raises(ValueError, match="one control interval"):
        ts_loss_and_gradient(net, f0, target)
