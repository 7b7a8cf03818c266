"""sigma', Sigma of every activation against finite differences and quadrature."""
import numpy as np
import pytest
from scipy.integrate import quad

from pdenet.network.activations import NAMES, Activation


@pytest.mark.parametrize("name", NAMES)
def test_derivative_and_primitive(name):
    act = Activation(name)
    u = np.linspace(-4, 4, 17) + 0.013  # avoid the kink at 0
    eps = 1e-6
    np.testing.assert_allclose(act.prime(u), (act(u + eps) - act(u - eps)) / (2 * eps), atol=1e-8)
    integral = np.array([quad(lambda s: act(np.array([s]))[0], 0.0, x, epsabs=1e-13)[0] for x in u])
    np.testing.assert_allclose(act.primitive(u), integral, atol=1e-11)
    assert act.primitive(np.zeros(1))[0] == 0.0


def test_values():
    u = np.array([-2.0, 0.5])
    np.testing.assert_allclose(Activation("relu")(u), [0, 0.5])
    np.testing.assert_allclose(Activation("leaky_relu")(u), [-0.2, 0.5])
    np.testing.assert_allclose(Activation("elu")(u), [np.expm1(-2), 0.5])
    np.testing.assert_allclose(Activation("sigmoid")(np.array([-800.0, 800.0])), [0, 1])  # no overflow
    np.testing.assert_allclose(Activation("tanh").primitive(np.array([800.0])), [800 - np.log(2)])
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("swish")
