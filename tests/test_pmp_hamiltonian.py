"""The Hamiltonian is constant in t along a converged E-MSA pair (Liu & Markowich Sect. 4.2).

Problem: 4-cell label mesh on (0, 1), one sample f_I = sin(pi y), tanh,
b(y, z) = 3 cos(pi (y - z)) fixed, target 2 cos(pi y) (out of reach: |f_t| <= 1),
T = 1, a in [-1, 1] the control with one control per Euler step (K = L).
The optimal a is bang-bang with one switch (cell 2 goes from -1 to +1 near
t = 0.45, where its co-state r* changes sign). Along the converged pair the
discrete H_n = int_Y sigma(a_n - B f_n) r*_{n+1} dy must be constant up to the
Euler error: its spread max - min halves when dt halves. A control with the
switch at the wrong time makes H jump by O(1) at the switch, independent of dt.
"""
import numpy as np
import pytest

from pdenet.mesh import Mesh
from pdenet.network import DenseOperator, Head, NetworkPDE
from pdenet.network.pmp import NetworkPMP
from solvers import Schedule, make_stepper
from solvers.optim import emsa

BOX = (-1.0, 1.0)


def problem(steps, cells=4):
    mesh = Mesh([0.0], [1.0], [cells])
    y = mesh.centres()[0]
    b = 3.0 * np.cos(np.pi * (y[:, None] - y[None, :]))
    net = NetworkPDE(mesh, "tanh", np.zeros((steps, cells)), DenseOperator(np.repeat(b[None], steps, 0)),
                     Head("identity", "l2", mesh.cell_volume, cells), Schedule(steps, 1.0 / steps, steps),
                     make_stepper("euler"))
    return net, np.sin(np.pi * y)[None], 2.0 * np.cos(np.pi * y)[None]


def converged_emsa(steps, tol=1e-6, rho=0.3, maxiter=300):
    net, f0, target = problem(steps)
    system = NetworkPMP(net, f0, target, controls=("a",), box={"a": BOX})
    hist = emsa(system, maxiter, rho=rho, callback=lambda k, info: k > 0 and info["step"] < tol)
    return net, system, hist


def spread(H):
    return float(H.max() - H.min())


@pytest.fixture(scope="module")
def converged():
    return {L: converged_emsa(L) for L in (8, 16, 32)}


def test_hamiltonian_is_constant_along_the_converged_emsa_pair_to_order_dt(converged):
    spreads, means = [], []
    for L, (net, system, hist) in converged.items():
        assert hist["step"][-1] < 1e-6                      # converged: the E-MSA fixed point
        a = net.a
        # bang-bang except at the switching step, and there is a switch (cell 2: -1 -> +1)
        assert np.mean(np.isin(a, BOX)) >= 1 - 1.5 / a.size
        assert a[0, 1] == -1.0 and a[-1, 1] == 1.0
        H = system.hamiltonian_steps()                      # along the sweep of the last iterate
        spreads.append(spread(H))
        means.append(H.mean())
    spreads = np.array(spreads)
    # measured: 2.68e-2, 1.21e-2, 5.22e-3 (ratios 2.2, 2.3): first order in dt
    ratios = spreads[:-1] / spreads[1:]
    assert np.all(ratios > 1.7) and np.all(ratios < 3.0), spreads
    assert spreads[-1] < 0.02 * abs(means[-1])              # 1.5% of H at L = 32
    assert abs(means[-1] - means[-2]) < abs(means[-2] - means[-3])


def test_hamiltonian_jumps_for_a_control_switching_at_the_wrong_time(converged):
    wrong = {}
    for L in (16, 32):
        net, system, _ = converged[L]
        a_opt = net.a.copy()
        H_opt = spread(system.hamiltonian_steps())
        try:
            net.a[:, 1] = np.where(np.arange(L) < L // 8, -1.0, 1.0)   # switch at t = 1/8, not ~0.45
            system.sweep()
            wrong[L] = spread(system.hamiltonian_steps())
        finally:
            net.a[...] = a_opt
            system.sweep()
        assert wrong[L] > 3 * H_opt
    # measured 0.037, 0.039: an O(1) jump at the switch that does not shrink with dt
    assert wrong[32] > 0.9 * wrong[16] and wrong[32] > 7 * spread(converged[32][1].hamiltonian_steps())
