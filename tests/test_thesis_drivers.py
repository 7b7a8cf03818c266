"""The thesis's training drivers on the network model (issue 15): momentum, nesterov, entropy-sgd,
hj, heat, elastic, parle.

* each update rule against a step computed by hand on a tiny quadratic objective;
* each driver reduces the loss on a real data set (the 8x8 digits) from the case file;
* Entropy-SGD's averaged inner direction on a network equals the local-entropy gradient
  (x - prox_gamma(x)) / gamma of the independent oracle (scipy's L-BFGS-B on the proximal problem)
  within the sampling error of the mini-batch Langevin chains;
* Elastic-SGD and Entropy-SGD agree in the limit of Sect. 4.3.3 (strictly convex sub-objective,
  the replicas / the inner loop fast against the reference variable).
"""
import numpy as np
import pytest
from scipy import optimize

import pdenet
from conftest import case_path
from pdenet.network import drivers
from pdenet.network.elastic import elastic
from pdenet.network.entropy_sgd import entropy_sgd, langevin
from pdenet.network.heat import heat
from pdenet.network.hj import hj
from pdenet.network.momentum import momentum
from pdenet.network.objective import BatchObjective, NetworkObjective
from pdenet.network.parle import parle

DIGITS = case_path("digits_adam.toml")


class Quadratic:
    """f(x) = 1/2 x.A x - c.x on params {"x": (2,)} (the objective protocol of solvers.optim)."""

    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    c = np.array([1.0, -1.0])

    def __init__(self, x0=(1.0, 2.0)):
        self.params = {"x": np.array(x0, dtype=float)}
        self.calls = 0

    def f(self, x):
        return 0.5 * x @ self.A @ x - self.c @ x

    def g(self, x):
        return self.A @ x - self.c

    def loss(self):
        return self.f(self.params["x"])

    def loss_and_gradient(self):
        self.calls += 1
        x = self.params["x"]
        return self.f(x), {"x": self.g(x)}


q = Quadratic()
x0 = np.array([1.0, 2.0])


# -- update rules against hand-computed steps ----------------------------------------------------
def test_momentum_and_nesterov_steps_by_hand():
    lr, mu = 0.1, 0.9
    # heavy ball: v1 = -lr g(x0), x1 = x0 + v1; v2 = mu v1 - lr g(x1), x2 = x1 + v2
    v1 = -lr * q.g(x0)
    x1 = x0 + v1
    x2 = x1 + mu * v1 - lr * q.g(x1)
    obj = Quadratic()
    h = momentum(obj, 2, lr, mu)
    np.testing.assert_allclose(obj.params["x"], x2, rtol=1e-15)
    np.testing.assert_allclose(h["loss"], [q.f(x0), q.f(x1), q.f(x2)], rtol=1e-15)
    # Nesterov (Sutskever et al.): the gradient at the look-ahead x1 + mu v1
    x2n = x1 + mu * v1 - lr * q.g(x1 + mu * v1)
    obj = Quadratic()
    momentum(obj, 2, lr, mu, nesterov=True)
    np.testing.assert_allclose(obj.params["x"], x2n, rtol=1e-15)
    assert not np.allclose(x2n, x2)
    # a box projects and the velocity is the projected step
    obj = Quadratic()
    momentum(obj, 2, lr, mu, box={"x": (0.95, 5.0)})
    y1 = np.clip(x0 - lr * q.g(x0), 0.95, 5.0)
    np.testing.assert_allclose(obj.params["x"], np.clip(y1 + mu * (y1 - x0) - lr * q.g(y1), 0.95, 5.0), rtol=1e-15)


def test_entropy_sgd_step_by_hand():
    lr, gamma, s1, eta, alpha = 0.7, 2.0, 0.1, 0.2, 0.25
    x = x0.copy()
    for k in range(2):                       # two outer iterations, L = 2 inner steps, scoped gamma
        g_k = gamma * (1 - s1) ** k
        y = z = x.copy()
        for _ in range(2):
            y = y - eta * (q.g(y) + (y - x) / g_k)
            z = alpha * z + (1 - alpha) * y
        x = x - lr * (x - z)
    obj = Quadratic()
    h = entropy_sgd(obj, 2, lr, gamma=gamma, scoping=s1, langevin_steps=2, langevin_lr=eta, langevin_noise=0.0,
                    averaging=alpha)
    np.testing.assert_allclose(obj.params["x"], x, rtol=1e-14)
    np.testing.assert_allclose(h["gamma"], [gamma, gamma, gamma * (1 - s1)])
    np.testing.assert_array_equal(h["gradient_evaluations"], [0, 2, 4])
    # the noise is sqrt(2 eta / beta) N(0, I) per inner step (Algorithm 2, line 4)
    rng = np.random.default_rng(5)
    z, y = langevin(q.g, x0, gamma, 1, eta, 0.3, 0.0, rng)
    xi = np.random.default_rng(5).standard_normal(2)
    np.testing.assert_allclose(y, x0 - eta * q.g(x0) + np.sqrt(2 * eta * 0.3) * xi, rtol=1e-15)


def test_hj_step_by_hand():
    # (4.42) with L = 3: y <- (1 - eta_y/gamma) y + eta_y g(x - y) twice from y = 0, then x <- x - eta g(x - y)
    lr, gamma, eta = 0.3, 0.5, 0.1
    y = np.zeros(2)
    for _ in range(2):
        y = (1 - eta / gamma) * y + eta * q.g(x0 - y)
    x1 = x0 - lr * q.g(x0 - y)
    obj = Quadratic()
    h = hj(obj, 1, lr, gamma=gamma, scoping=0.0, langevin_steps=3, langevin_lr=eta)
    np.testing.assert_allclose(obj.params["x"], x1, rtol=1e-15)
    assert obj.calls == 3 and h["gradient_evaluations"][-1] == 3


def test_heat_step_by_hand():
    lr, gamma, L = 0.2, 0.01, 4
    rng = np.random.default_rng([3, 11])
    total = sum(q.g(x0 + np.sqrt(gamma) * rng.standard_normal(2)) for _ in range(L))
    obj = Quadratic()
    heat(obj, 1, lr, gamma=gamma, scoping=0.0, langevin_steps=L, seed=3)
    np.testing.assert_allclose(obj.params["x"], x0 - lr / L * total, rtol=1e-15)
    # gamma = 0: plain gradient descent
    obj = Quadratic()
    heat(obj, 1, lr, gamma=0.0, langevin_steps=2)
    np.testing.assert_allclose(obj.params["x"], x0 - lr * q.g(x0), rtol=1e-15)


class Shifted(Quadratic):
    """Replica a's own loss f_a(x) = f(x) - d_a.x (the replicas' different mini-batches, in miniature)."""

    def __init__(self, params, d):
        self.params, self.d, self.calls = params, np.asarray(d, dtype=float), 0

    def g(self, x):
        return super().g(x) - self.d


D = {0: [0.3, 0.0], 1: [0.0, -0.2]}


def test_elastic_step_by_hand():
    lr, rho, s1 = 0.1, 0.5, 0.2
    ga = {a: (lambda x, a=a: q.g(x) - np.array(D[a])) for a in D}
    for master_lr in (None, 0.05):
        x, xa = x0.copy(), {a: x0.copy() for a in D}
        for k in range(3):
            r = rho * (1 - s1) ** k
            mean = (xa[0] + xa[1]) / 2
            xa = {a: xa[a] - lr * (ga[a](xa[a]) + (xa[a] - x) / r) for a in D}
            x = mean.copy() if master_lr is None else x - (2 * master_lr / r) * (x - mean)
        obj = Quadratic()
        h = elastic(obj, 3, lr, lambda a: Shifted(obj.params, D[a]), replicas=2, coupling=rho, scoping=s1,
                    master_lr=master_lr)
        np.testing.assert_allclose(obj.params["x"], x, rtol=1e-14)
        np.testing.assert_array_equal(h["gradient_evaluations"], [0, 2, 4, 6])


def test_parle_step_by_hand():
    lr, gamma, rho, s1, eta, alpha, L = 0.5, 2.0, 0.5, 0.1, 0.2, 0.25, 2
    ga = {a: (lambda x, a=a: q.g(x) - np.array(D[a])) for a in D}
    x, xa = x0.copy(), {a: x0.copy() for a in D}
    for k in range(3):
        g_k, r = gamma * (1 - s1) ** k, rho * (1 - s1) ** k
        mean = (xa[0] + xa[1]) / 2
        new = {}
        for a in D:
            y = z = xa[a].copy()
            for _ in range(L):
                y = y - eta * (ga[a](y) + (y - xa[a]) / g_k)          # (5.8a)
                z = alpha * z + (1 - alpha) * y                      # (5.8b)
            new[a] = xa[a] - lr * (xa[a] - z) - lr / r * (xa[a] - x)   # (5.8c)
        xa, x = new, mean                                            # (5.8d), eta^(3) = rho/n
    obj = Quadratic()
    h = parle(obj, 3, lr, lambda a: Shifted(obj.params, D[a]), replicas=2, gamma=gamma, coupling=rho, scoping=s1,
              langevin_steps=L, langevin_lr=eta, averaging=alpha)
    np.testing.assert_allclose(obj.params["x"], x, rtol=1e-14)
    np.testing.assert_array_equal(h["gradient_evaluations"], [0, 4, 8, 12])
    np.testing.assert_allclose(h["coupling"][1:], [rho * (1 - s1) ** k for k in range(3)])


# -- loss decrease on the digits -------------------------------------------------------------------
@pytest.mark.parametrize("method, iterations, sets", [
    ("momentum", 30, ["train.lr=1"]),
    ("nesterov", 30, ["train.lr=1"]),
    ("entropy-sgd", 20, ["train.lr=1", "train.langevin_lr=1", "train.langevin_steps=10"]),
    ("hj", 40, ["train.lr=3", "train.langevin_lr=1"]),
    ("heat", 50, ["train.lr=3", "train.langevin_steps=4"]),
    ("elastic", 60, ["train.lr=1", "train.coupling=10", "train.replicas=3"]),
    ("parle", 16, ["train.lr=1", "train.langevin_lr=1", "train.langevin_steps=5", "train.coupling=10", "train.replicas=2"]),
])
def test_driver_reduces_the_digits_loss(method, iterations, sets):
    r = pdenet.run(DIGITS, overrides=[f'train.method="{method}"', f"train.iterations={iterations}", "data.limit=300",
                                      "train.batch_size=32", f"train.eval_every={iterations}", 'train.metric="l2"',
                                      *sets], write=False)
    full = r.train["full_loss"]
    assert full[-1] < 0.95 * full[0], full[[0, -1]]
    assert r.attrs["train_method"] == method and np.all(np.diff(r.train["gradient_evaluations"]) > 0)


# -- the local entropy on a network -----------------------------------------------------------------
def _tiny(limit=48, batch=0):
    case = pdenet.load_case(DIGITS, [f"data.limit={limit}", 'model.kernel.init="random"', "model.kernel.scale=0.5",
                                     'model.output.init="random"', "model.output.scale=0.3"])
    model = case.model_cls(case)
    net = model.net
    obj = (BatchObjective(net, model.inputs, model.targets, batch, seed=1) if batch
           else NetworkObjective(net, model.inputs, model.targets))
    return net, obj


def test_entropy_sgd_inner_direction_is_the_local_entropy_gradient():
    """With 1/beta -> 0 the Gibbs mean <y> is the proximal point, so grad f_gamma(x) = (x - prox)/gamma
    (the Moreau envelope's gradient). The oracle solves the proximal problem with scipy; the inner
    loop runs on mini-batches (its sampling error), the direction averaged over independent chains."""
    net, full = _tiny()
    w = drivers.l2_weights(net)
    flat = drivers.Flat(full, metric=w)
    x = flat.get()
    wf = 1.0 / flat.inverse_metric
    gamma = 2.0

    def prox_objective(y):                    # f(y) + |y - x|_w^2 / (2 gamma), exact gradient
        J, g = flat.gradient(y)
        return J + 0.5 / gamma * np.sum(wf * (y - x) ** 2), (g + (y - x) / gamma) * wf

    res = optimize.minimize(prox_objective, x, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "maxiter": 2000})
    oracle = (x - res.x) / gamma
    grad = flat.gradient(x)[1]
    # the mini-batch chains
    _, batch = _tiny(batch=16)
    bflat = drivers.Flat(batch, metric=w)
    rng = np.random.default_rng(0)
    dirs = []
    for _ in range(24):
        z, _ = langevin(lambda y: bflat.gradient(y)[1], x, gamma, 120, 0.25, 0.0, 0.0, rng)
        dirs.append((x - z) / gamma)
    dirs = np.array(dirs)
    est, se = dirs.mean(axis=0), dirs.std(axis=0, ddof=1) / np.sqrt(len(dirs))

    def norm(v):
        return np.sqrt(np.sum(wf * v * v))
    err = norm(est - oracle)
    sampling = norm(se)
    assert err <= 4 * sampling + 0.02 * norm(oracle), (err, sampling, norm(oracle))
    # and the local entropy is not the loss: its gradient differs from grad f by much more
    assert norm(grad - oracle) > 5 * (4 * sampling + 0.02 * norm(oracle)), (norm(grad - oracle), err)


# -- the Elastic-SGD / Entropy-SGD limit (thesis Sect. 4.3.3, Sect. 5.2.3) ---------------------------
def test_elastic_and_entropy_sgd_agree_in_the_limit():
    """With the sub-objective f(y) + |y - x|^2/(2 gamma) strictly convex, Entropy-SGD's inner loop
    (converged, alpha = 0) returns prox_gamma(x), and Elastic-SGD's replicas, coupled at rho = gamma,
    relax to the same point; with the reference variable moving slowly against the replicas (the
    scale separation epsilon -> 0 of Sect. 4.3.1), both follow x' = -(x - prox_gamma(x)). Elastic's
    reference variable with master step c = n eta'/rho = lr/M over M K iterations is compared with
    Entropy-SGD with outer step lr/M over M K iterations: the difference (the replicas' lag) is
    small against the distance travelled and falls like 1/M (measured: 0.35 at M = 4, 0.11 at 16)."""
    gamma, lr, K = 2.0, 0.5, 2
    diffs = []
    for M in (4, 16):
        net, obj = _tiny(limit=24)
        w = drivers.l2_weights(net)
        x0_ = drivers.Flat(obj).get()
        entropy_sgd(obj, K * M, lr / M, gamma=gamma, scoping=0.0, langevin_steps=25, langevin_lr=0.5,
                    langevin_noise=0.0, averaging=0.0, metric=w)
        xe = drivers.Flat(obj).get()
        net, obj = _tiny(limit=24)
        n = 2
        elastic(obj, K * M, 1.0, lambda a: obj, replicas=n, coupling=gamma, scoping=0.0,
                master_lr=(lr / M) * gamma / n, metric=w)
        xl = drivers.Flat(obj).get()
        wf = drivers.Flat(obj, metric=w).inverse_metric ** -1

        def norm(v):
            return np.sqrt(np.sum(wf * v * v))
        diffs.append(norm(xl - xe) / norm(xe - x0_))
    assert diffs[1] < 0.15, diffs
    assert diffs[0] / diffs[1] > 2.5, diffs        # ~ 1/M: 4 at first order


def test_bad_driver_keys_are_one_line_errors():
    for sets, key in [(["train.momentum=1.0"], "train.momentum"), (["train.averaging=1.5"], "train.averaging"),
                      (['train.metric="sobolev"'], "train.metric"), (["train.replicas=0"], "train.replicas"),
                      (["train.gamma=-1"], "train.gamma")]:
        with pytest.raises(pdenet.CaseError) as info:
            pdenet.load_case(DIGITS, [f'train.method="parle"', *sets])
        assert key in str(info.value) and "\n" not in str(info.value)
