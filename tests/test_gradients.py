"""Exact gradients of the discrete loss: Taylor tests for every stepper x kernel x loss."""
import zlib

import numpy as np
import pytest

from netfactory import make_net, taylor_remainders

STEPPERS = ["euler", "heun", "rk4", "beuler", "cn"]
KERNELS = ["dense", "lowrank", "convolution"]
LOSSES = ["l2", "l2-field", "logistic", "softmax"]
SEED_OFFSET = 0


def assert_second_order(rem):
    ratios = rem[:-1] / rem[1:]
    # remainder O(eps^2): a factor ~4 per halving, over (at least) the last three halvings
    assert len(ratios) >= 3
    assert np.all(np.abs(ratios[-3:] - 4.0) < 0.25), ratios


@pytest.mark.parametrize("stepper", STEPPERS)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("loss", LOSSES)
def test_taylor(stepper, kernel, loss):
    # a fixed seed per combination (str hash() is salted per process, which made this test flaky)
    rng = np.random.default_rng(zlib.crc32(f"{stepper}-{kernel}-{loss}".encode()) + SEED_OFFSET)
    net, f0, target = make_net(rng, stepper=stepper, kernel=kernel, loss=loss, activation="tanh",
                               tikhonov=0.05)
    assert_second_order(taylor_remainders(net, f0, target, rng, eps0=2e-3))


@pytest.mark.parametrize("activation", ["identity", "elu", "sigmoid", "arctan", "leaky_relu", "relu"])
def test_taylor_activations(activation):
    rng = np.random.default_rng(7)
    net, f0, target = make_net(rng, stepper="heun", activation=activation)
    # piecewise-linear activations: keep eps small enough that no pre-activation changes sign
    eps0 = 1e-4 if activation in ("relu", "leaky_relu") else 1e-2
    assert_second_order(taylor_remainders(net, f0, target, rng, eps0=eps0))


def test_taylor_2d_and_3d_convolution():
    for cells in [(5, 4), (3, 3, 2)]:
        rng = np.random.default_rng(3)
        net, f0, target = make_net(rng, stepper="rk4", kernel="convolution", loss="softmax", cells=cells)
        assert_second_order(taylor_remainders(net, f0, target, rng))


@pytest.mark.parametrize("stepper", ["euler", "rk4", "cn"])
@pytest.mark.parametrize("every", [1, 2, 4, 7])
def test_checkpointing_gives_the_same_gradient(stepper, every):
    rng = np.random.default_rng(11)
    net, f0, target = make_net(rng, stepper=stepper, steps=7, intervals=7)
    J1, g1, _, _ = net.loss_and_gradient(f0, target, keep="all")
    J2, g2, _, _ = net.loss_and_gradient(f0, target, keep=every)
    assert J1 == J2
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-12, atol=1e-14)


def test_checkpointing_bounds_memory():
    """With checkpoint_every = c the tape never holds more than c step records."""
    from solvers import integrate

    rng = np.random.default_rng(2)
    net, f0, target = make_net(rng, steps=16, intervals=1)
    _, tape = net.forward(f0, keep=4)
    assert len(tape.records) == 0 and sorted(tape.checkpoints) == [0, 4, 8, 12]
    peak = []
    orig = integrate._recompute_segment

    def spy(system, tape, start):
        orig(system, tape, start)
        peak.append(len(tape.records))
    integrate._recompute_segment = spy
    try:
        grad = net.zero_grad()
        _, lam, _ = net.head.loss(net.forward(f0)[0], target, grad)
        integrate.solve_adjoint(net, tape, lam, grad)
    finally:
        integrate._recompute_segment = orig
    assert max(peak) <= 4


def test_paper_gradient_formula_euler():
    """Prop. 4.1 discretised: dJ/da_n = tau sum_s sigma'(u_n) lambda_{n+1} for explicit Euler."""
    rng = np.random.default_rng(5)
    net, f0, target = make_net(rng, steps=5, intervals=5)
    states, costates, lins = {}, {}, {}

    def on_state(n, t, f, lin):
        states[n] = f.copy()
        if lin is not None:
            lins[n] = lin[1].copy()

    J, grad, _, _ = net.loss_and_gradient(f0, target, on_state=on_state,
                                          on_costate=lambda n, lam: costates.__setitem__(n, lam.copy()))
    tau = net.schedule.dt
    for n in range(5):
        expected = tau * np.sum(net.activation.prime(lins[n]) * costates[n + 1], axis=0)
        np.testing.assert_allclose(grad["a"][n], expected, rtol=1e-12)
        # D_b J(y, z) = -f(z) sigma'(u(y)) r(y), with the quadrature weight h
        expected_b = -tau * net.h * (net.activation.prime(lins[n]) * costates[n + 1]).T @ states[n]
        np.testing.assert_allclose(grad["b"][n], expected_b, rtol=1e-11, atol=1e-14)
    # terminal condition: lambda_L = h (f(T) - target) / S for the identity-head l2 loss
    S = f0.shape[0]
    np.testing.assert_allclose(costates[5], net.h * (states[5] - target) / S, rtol=1e-13)


# -- the explicit gradient buffer (pdenet.network.pde.Gradient) -----------------------------------
def _adjoint_into(net, f0, target, grad):
    """Forward, head and co-state solve adding into the caller's buffer ``grad``."""
    from solvers import integrate

    fT, tape = net.forward(f0, keep="all")
    _, lam, _ = net.head.loss(fT, target, grad)
    return integrate.solve_adjoint(net, tape, lam, grad)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gradient_buffer_is_owned_by_the_caller(kernel):
    """The buffer the caller makes, reuses after zero(), or replaces by a plain dict gives the same
    bits as loss_and_gradient; interleaving two networks' solves changes nothing (no shared state)."""
    from pdenet.network import Gradient

    rng = np.random.default_rng(11)
    net, f0, target = make_net(rng, stepper="rk4", kernel=kernel, loss="softmax")
    other, g0, t0 = make_net(np.random.default_rng(12), stepper="heun", kernel=kernel, loss="l2")
    _, grad, _, _ = net.loss_and_gradient(f0, target)
    assert isinstance(grad, Gradient)
    assert grad.a is grad["a"] and set(grad.kernel) == set(net.operator.params)
    assert set(grad.head) == {"W", "mu"} and set(grad) == set(net.params)
    buf = net.zero_grad()
    other_buf = other.zero_grad()
    for _ in range(2):                               # reused: zeroed by its owner in between
        buf.zero()
        _adjoint_into(other, g0, t0, other_buf)      # another network's solve in between
        lam0 = _adjoint_into(net, f0, target, buf)
        for k in grad:
            assert np.array_equal(buf[k], grad[k]), k
    assert np.array_equal(lam0, grad.f0)
    plain = {k: np.zeros_like(v) for k, v in net.params.items()}   # a plain dict: always accumulates
    _adjoint_into(net, f0, target, plain)
    for k in grad:
        np.testing.assert_allclose(plain[k], grad[k], rtol=1e-14, atol=1e-300)
    # without zero() the buffer accumulates: twice the gradient
    _adjoint_into(net, f0, target, buf)
    for k in grad:
        np.testing.assert_allclose(buf[k], 2 * grad[k], rtol=1e-14, atol=1e-300)


def test_gradient_f0_is_dJ_df0():
    """Gradient.f0 is the co-state at the inputs: a Taylor test in the inputs."""
    rng = np.random.default_rng(13)
    net, f0, target = make_net(rng, stepper="cn", kernel="dense", loss="l2")
    J, grad, _, _ = net.loss_and_gradient(f0, target)
    d = rng.standard_normal(f0.shape)
    slope = float(np.sum(grad.f0 * d))
    rem = [abs(net.loss(f0 + eps * d, target)[0] - J - eps * slope) for eps in 1e-2 / 2.0 ** np.arange(5)]
    assert_second_order(np.array(rem))
