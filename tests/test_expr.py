import numpy as np
import pytest

from pdenet import ExpressionError
from pdenet.expr import Expression


def test_arithmetic_functions_and_power_precedence():
    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(Expression("-4*x^2", ["x"])(x=x), -4 * x ** 2)
    np.testing.assert_allclose(Expression("-x**2 + 2^3", ["x"])(x=x), -(x ** 2) + 8)
    np.testing.assert_allclose(Expression("exp(-(x-0.5)^2/2)*sin(pi*x)", ["x"])(x=x),
                               np.exp(-(x - 0.5) ** 2 / 2) * np.sin(np.pi * x))
    np.testing.assert_allclose(Expression("where(x > 0, x, 0) + max(x, 0.5)", ["x"])(x=x),
                               np.where(x > 0, x, 0) + np.maximum(x, 0.5))
    assert Expression("3", [])(shape=(2, 3)).shape == (2, 3)
    assert Expression(2.5, [])() == 2.5


@pytest.mark.parametrize("text,msg", [
    ("x.__class__", "attribute access"),
    ("().__class__.__bases__", "attribute access"),
    ("x[0]", "subscripting"),
    ("__import__('os')", "undefined function '__import__'"),
    ("open('f')", "undefined function 'open'"),
    ("lambda: 1", "Lambda"),
    ("sin(x, out=x)", "keyword arguments"),
    ("'abc'", "constant 'abc'"),
    ("foo(x)", "undefined function 'foo'"),
    ("sinn(x)", "did you mean 'sin'"),
    ("y + 1", "unknown name 'y'"),
    ("x +", "syntax error"),
    ("[x for x in 1]", "ListComp"),
    ("sin()", "takes 1 argument"),
])
def test_rejects_everything_outside_the_language(text, msg):
    with pytest.raises(ExpressionError, match=msg):
        Expression(text, ["x"])


def test_non_finite_values_are_reported():
    with pytest.raises(ExpressionError, match="non-finite"):
        Expression("log(x)", ["x"])(x=np.array([0.0, 1.0]))
