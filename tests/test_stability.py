"""Theorem 3.2 (Lyapunov functional) and Proposition 3.5 (linear growth for relu)."""
import numpy as np
import pytest

from conftest import case_path
import pdenet


def _symmetric_part_min_eig(result_case):
    case = pdenet.load_case(result_case)
    model = case.model_cls(case)
    B = model.net.operator.matrix(0, model.mesh.cell_volume)
    return np.linalg.eigvalsh(0.5 * (B + B.T)).min()


def test_shipped_case_has_nonnegative_symmetric_part():
    assert _symmetric_part_min_eig(case_path("network_lyapunov.toml")) > -1e-12


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu"])
def test_lyapunov_functional_non_increasing(activation):
    r = pdenet.run(case_path("network_lyapunov.toml"), write=False,
                   overrides=[f'model.activation="{activation}"'])
    L = r.diagnostics["lyapunov"]
    assert np.all(np.diff(L) <= 1e-12 * np.abs(L[:-1]).max()), np.diff(L).max()
    assert L[-1] < L[0]  # strictly decreasing overall: not a constant


def test_lyapunov_can_increase_without_the_hypothesis():
    # B = -(Gaussian): B_s <= 0, the functional grows
    r = pdenet.run(case_path("network_lyapunov.toml"), write=False,
                   overrides=['model.kernel.expression="-exp(-(y - z)^2/0.08)"', "time.t_end=1.0",
                              "time.steps=50"])
    assert np.any(np.diff(r.diagnostics["lyapunov"]) > 0)


def test_relu_growth_at_most_linear():
    """Proof of Prop 3.5: ||u+(t)|| is non-increasing, so ||f(t) - f_I|| <= t ||u+(0)||."""
    r = pdenet.run(case_path("network_lyapunov.toml"), write=False)
    f, t, mesh = r.fields["f"], r.time, r.mesh
    u = r.fields["u"]
    up0 = np.sqrt(mesh.integrate(np.maximum(u[0], 0) ** 2))          # per sample
    drift = np.sqrt(mesh.integrate((f - f[0]) ** 2))                  # (n_saved, S)
    assert np.all(drift <= t[:, None] * up0[None, :] * (1 + 1e-6) + 1e-12)
    upn = np.sqrt(mesh.integrate(np.maximum(u, 0) ** 2))
    assert np.all(np.diff(upn, axis=0) <= 1e-10)
    # and the growth really is linear, not bounded: ||f|| keeps increasing
    assert r.diagnostics["norm_f"][-1] > 2 * r.diagnostics["norm_f"][0]


def test_relu_exponential_growth_without_the_hypothesis():
    r = pdenet.run(case_path("network_lyapunov.toml"), write=False,
                   overrides=['model.kernel.expression="-3"', "time.t_end=3.0", "time.steps=150"])
    n = r.diagnostics["norm_f"]
    t = r.time
    # log-linear growth: the late growth rate is positive and far above a linear fit
    rate = np.diff(np.log(n))[-10:] / np.diff(t)[-10:]
    assert np.all(rate > 1.0)
