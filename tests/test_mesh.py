import numpy as np
import pytest

from pdenet import Mesh
from pdenet.mesh import MeshError


def test_centres_volumes_and_midpoint_rule():
    m = Mesh([0.0, -1.0], [2.0, 1.0], [4, 8])
    assert m.ndim == 2 and m.size == 32
    assert m.spacing == (0.5, 0.25)
    assert m.cell_volume == pytest.approx(0.125)
    np.testing.assert_allclose(m.axes[0], [0.25, 0.75, 1.25, 1.75])
    x, y = m.centres()
    assert x.shape == (4, 8)
    # the midpoint rule is exact for bilinear functions
    assert m.integrate(3 * x * y + x + 2) == pytest.approx(np.sum(m.weights() * (3 * x * y + x + 2)))
    assert m.integrate(x + 2) == pytest.approx(2.0 * 2.0 + 2.0 * 4.0)
    assert m.volume == pytest.approx(4.0)


def test_midpoint_rule_is_second_order():
    errs = []
    for n in (8, 16, 32):
        m = Mesh(0, 1, n)
        errs.append(abs(m.integrate(np.exp(m.axes[0])) - (np.e - 1)))
    assert np.log2(errs[0] / errs[1]) == pytest.approx(2, abs=0.02)
    assert np.log2(errs[1] / errs[2]) == pytest.approx(2, abs=0.02)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_prolong_restrict(ndim, rng):
    coarse = Mesh([0] * ndim, [1] * ndim, [3, 4, 2][:ndim])
    fine = coarse.refine(3)
    assert coarse.refinement_factor(fine) == 3
    u = rng.standard_normal((2,) + coarse.shape)
    up = coarse.prolong(u, fine)
    assert up.shape == (2,) + fine.shape
    # restriction undoes prolongation and both preserve integrals
    np.testing.assert_allclose(coarse.restrict(up, fine), u)
    np.testing.assert_allclose(fine.integrate(up), coarse.integrate(u))
    v = rng.standard_normal(fine.shape)
    np.testing.assert_allclose(coarse.integrate(coarse.restrict(v, fine)), fine.integrate(v))


def test_restrict_rejects_non_refinement():
    with pytest.raises(ValueError):
        Mesh(0, 1, 4).restrict(np.zeros(6), Mesh(0, 1, 6))


def test_boundaries():
    m = Mesh([0, 0], [1, 1], [2, 2], ["periodic", ("dirichlet", {"kind": "neumann", "value": 2.0})])
    assert m.boundary[0][0].kind == "periodic"
    assert m.boundary[1][1].kind == "neumann" and m.boundary[1][1].value == 2.0
    with pytest.raises(MeshError, match="periodic must be set on both sides"):
        Mesh(0, 1, 4, [("periodic", "noflux")])
    with pytest.raises(MeshError, match="unknown boundary kind"):
        Mesh(0, 1, 4, "sticky")


@pytest.mark.parametrize("kw,msg", [
    (dict(lower=0, upper=1, cells=-3), "must be positive"),
    (dict(lower=1, upper=0, cells=3), "upper must exceed lower"),
    (dict(lower=[0, 0], upper=[1], cells=3), "have 2, 1 and 1 entries"),
    (dict(lower=[0] * 4, upper=[1] * 4, cells=2), "1, 2 or 3 dimensions"),
    (dict(lower=0, upper=1, cells=2.5), "integers"),
])
def test_bad_meshes(kw, msg):
    with pytest.raises(MeshError, match=msg):
        Mesh(**kw)
