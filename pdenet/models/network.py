"""Case-file model ``network``: the width-depth network PDE f_t = sigma(a - B_b f)."""
import numpy as np

from solvers import STEPPERS, Schedule, make_stepper

from ..activations import NAMES as ACTIVATIONS
from ..case import Key, resolve_time
from ..errors import CaseError
from ..expr import coordinate_env, coordinate_names
from ..network import ConvolutionOperator, DenseOperator, Head, LowRankOperator, NetworkPDE
from ..network.heads import KINDS, LOSSES
from . import register
from .base import Model

INIT = ["expression", "random", "zero"]


def _init_keys(what):
    return {
        "init": Key("str", "expression", f"How {what} is initialised: from `expression`, seeded "
                    "`random` normal entries, or `zero`.", choices=INIT),
        "seed": Key("int", 0, "Seed of the random initialisation."),
        "scale": Key("float", 1.0, "Standard deviation scale of the random initialisation.", minimum=0.0),
    }


@register
class NetworkModel(Model):
    """Width-depth network PDE of Liu & Markowich (PRODUCT.md 1.1): forward, co-state, exact gradients."""

    name = "network"
    fields = ("f", "u", "r")
    coordinate_prefix = "y"
    schema = {
        "model": {
            "activation": Key("str", "tanh", "sigma.", choices=list(ACTIVATIONS)),
            "intervals": Key("int", 1, "K: controls a, b are piecewise constant on K equal groups of steps "
                             "(K = steps gives one layer per step, a plain ResNet).", positive=True),
            "tikhonov": Key("float", 0.0, "lambda of the Tikhonov term (lambda/2) R(a, b) (paper 4.6).",
                            minimum=0.0),
            "bias": {
                "expression": Key("expr", "0", "a(y, t): expression of the label coordinates y (y1, y2, "
                                  "...) and t, sampled at cell centres and interval midpoints."),
                **_init_keys("a"),
            },
            "kernel": {
                "kind": Key("str", "dense", "Representation of b.", choices=["dense", "lowrank", "convolution"]),
                "expression": Key("expr", "0", "dense: b(y, z, t); convolution: kappa(d, t) of the offset "
                                  "d = y - z (d1, d2, ... in 2-D/3-D)."),
                "phi": Key("exprs", None, "lowrank: list of phi_r(y, t)."),
                "psi": Key("exprs", None, "lowrank: list of psi_r(z, t) (written in y)."),
                "rank": Key("int", 1, "lowrank with random init: rank R.", positive=True),
                **_init_keys("b"),
            },
            "output": {
                "kind": Key("str", "identity", "Output layer O_T.", choices=list(KINDS)),
                "classes": Key("int", 2, "Number of outputs M for kind = classes.", positive=True),
                "loss": Key("str", "l2", "Terminal loss.", choices=list(LOSSES)),
                "transform": Key("str", "none", "h in C = h(O_T) for the l2 loss.", choices=["none", "logistic"]),
                "seed": Key("int", 0, "Seed of the random W (mu starts at 0)."),
                "scale": Key("float", 1.0, "Scale of the random W.", minimum=0.0),
            },
        },
        "data": {
            "source": Key("str", "expression", "Where inputs f_I and targets come from.",
                          choices=["expression", "random"]),
            "inputs": Key("exprs", None, "expression: one f_I(y) per sample, or one expression of y and "
                          "the sample index s with `samples`."),
            "samples": Key("int", None, "Number of samples S (random source, or one input expression).",
                           positive=True),
            "targets": Key("exprs", None, "l2/logistic on a field output: target(y) per sample (or one "
                           "for all; may use s)."),
            "labels": Key("ints", None, "classes output: integer label per sample (softmax) or 0/1 "
                          "(logistic with classes = 1)."),
            "seed": Key("int", 0, "Seed of the random source."),
            "scale": Key("float", 1.0, "Standard deviation of random inputs.", minimum=0.0),
        },
    }

    @classmethod
    def validate(cls, data):
        if data["solver"]["backend"] != "builtin":
            raise CaseError("the PETSc backend is not available for the network model yet (planned); "
                            "use backend = \"builtin\"", key="solver.backend")
        time = data["time"]
        if time["stepper"] not in STEPPERS or time["stepper"] == "theta":
            raise CaseError(f"{time['stepper']!r} is not one of euler, heun, rk4, beuler, cn",
                            key="time.stepper")
        data["time"] = resolve_time(time)
        if data["model"]["intervals"] > data["time"]["steps"]:
            raise CaseError(f"K = {data['model']['intervals']} control intervals exceed the "
                            f"{data['time']['steps']} steps", key="model.intervals")
        out = data["model"]["output"]
        if out["loss"] == "softmax" and out["kind"] != "classes":
            raise CaseError("softmax needs output kind = 'classes'", key="model.output.loss")
        return data

    # -- construction -------------------------------------------------------
    def __init__(self, case):
        super().__init__(case)
        t = case["time"]
        K = case["model.intervals"]
        self.schedule = Schedule(t["steps"], t["dt"], K)
        self.t_mid = np.array([self.schedule.interval_midpoint(k) for k in range(K)])
        s = case["solver"]
        self.stepper = make_stepper(t["stepper"], newton_tol=s["newton_tol"],
                                    newton_maxiter=s["newton_maxiter"], krylov_tol=s["krylov_tol"])
        self.inputs, self.targets = self._data()
        a = self._bias()
        operator = self._operator()
        head = self._head()
        self.net = NetworkPDE(self.mesh, case["model.activation"], a, operator, head, self.schedule,
                              self.stepper, case["model.tikhonov"])

    def _names(self, prefix):
        return coordinate_names(prefix, self.mesh.ndim)

    def _rng(self, key):
        return np.random.default_rng(self.case[key])

    def _bias(self):
        K, N = self.schedule.intervals, self.mesh.size
        init = self.case["model.bias.init"]
        if init == "zero":
            return np.zeros((K, N))
        if init == "random":
            return self.case["model.bias.scale"] * self._rng("model.bias.seed").standard_normal((K, N))
        expr = self.case.expression("model.bias.expression", self._names("y") + ("t",))
        env = coordinate_env("y", self.mesh.centres())
        return np.stack([expr(shape=self.mesh.shape, t=t, **env).ravel() for t in self.t_mid])

    def _operator(self):
        c, mesh = self.case, self.mesh
        K, N, kind = self.schedule.intervals, mesh.size, c["model.kernel.kind"]
        init, scale = c["model.kernel.init"], c["model.kernel.scale"]
        rng = self._rng("model.kernel.seed")
        if kind == "dense":
            if init == "zero":
                return DenseOperator(np.zeros((K, N, N)))
            if init == "random":  # entries of B = h b with standard deviation scale / sqrt(N)
                return DenseOperator(rng.standard_normal((K, N, N)) * scale / (mesh.cell_volume * np.sqrt(N)))
            expr = c.expression("model.kernel.expression", self._names("y") + self._names("z") + ("t",))
            yy = [y.reshape(-1, 1) for y in mesh.centres()]   # (N, 1): the row variable y
            zz = [y.T for y in yy]                                # (1, N): the column variable z
            env = {**coordinate_env("y", yy), **coordinate_env("z", zz)}
            return DenseOperator(np.stack([expr(shape=(N, N), t=t, **env) for t in self.t_mid]))
        if kind == "lowrank":
            phi_e, psi_e = c["model.kernel.phi"], c["model.kernel.psi"]
            if init == "random" or init == "zero":
                R = c["model.kernel.rank"]
                if init == "zero":
                    return LowRankOperator(np.zeros((K, R, N)), np.zeros((K, R, N)))
                std = np.sqrt(scale / (mesh.cell_volume * np.sqrt(N)))
                return LowRankOperator(rng.standard_normal((K, R, N)) * std, rng.standard_normal((K, R, N)) * std)
            if phi_e is None or psi_e is None or len(phi_e) != len(psi_e):
                raise c.error("lowrank needs lists phi and psi of equal length", key="model.kernel.phi")
            names = self._names("y") + ("t",)
            env = coordinate_env("y", mesh.centres())

            def sample(key, exprs):
                out = np.empty((K, len(exprs), N))
                for r, text in enumerate(exprs):
                    e = c.expression(key, names, text=text)
                    for k, t in enumerate(self.t_mid):
                        out[k, r] = e(shape=mesh.shape, t=t, **env).ravel()
                return out
            return LowRankOperator(sample("model.kernel.phi", phi_e), sample("model.kernel.psi", psi_e))
        # convolution
        shape = tuple(2 * n - 1 for n in mesh.cells)
        if init == "zero":
            return ConvolutionOperator(np.zeros((K,) + shape), mesh.cells)
        if init == "random":
            return ConvolutionOperator(rng.standard_normal((K,) + shape) * scale / (mesh.cell_volume * np.sqrt(N)),
                                       mesh.cells)
        expr = c.expression("model.kernel.expression", self._names("d") + ("t",))
        offsets = [np.arange(-(n - 1), n) * h for n, h in zip(mesh.cells, mesh.spacing)]
        env = coordinate_env("d", np.meshgrid(*offsets, indexing="ij"))
        return ConvolutionOperator(np.stack([expr(shape=shape, t=t, **env) for t in self.t_mid]), mesh.cells)

    def _head(self):
        c, N, h = self.case, self.mesh.size, self.mesh.cell_volume
        kind, loss = c["model.output.kind"], c["model.output.loss"]
        if kind == "identity":
            return Head("identity", loss, h, N, transform=c["model.output.transform"])
        M = N if kind == "field" else c["model.output.classes"]
        rng = self._rng("model.output.seed")
        W = rng.standard_normal((M, N)) * c["model.output.scale"] / (h * np.sqrt(N))
        return Head(kind, loss, h, N, W, np.zeros(M), transform=c["model.output.transform"])

    def _data(self):
        c, mesh = self.case, self.mesh
        source = c["data.source"]
        kind, loss = c["model.output.kind"], c["model.output.loss"]
        if source == "random":
            S = c["data.samples"]
            if S is None:
                raise c.error("random data needs the number of samples", key="data.samples")
            rng = self._rng("data.seed")
            inputs = c["data.scale"] * rng.standard_normal((S, mesh.size))
        else:
            inputs = self._sample_exprs("data.inputs", required=True)
            S = inputs.shape[0]
        # targets
        if kind == "classes":
            M = c["model.output.classes"]
            labels = c["data.labels"]
            if labels is None:
                if source != "random":
                    raise c.error("classification needs integer labels", key="data.labels")
                labels = self._rng("data.seed").integers(0, max(M, 2), S)
            labels = np.atleast_1d(np.asarray(labels, dtype=int))
            if labels.size == 1:
                labels = np.repeat(labels, S)
            if labels.size != S:
                raise c.error(f"{labels.size} labels for {S} samples", key="data.labels")
            if loss == "softmax":
                if labels.min() < 0 or labels.max() >= M:
                    raise c.error(f"labels must lie in 0..{M - 1}", key="data.labels")
                return inputs, labels
            if loss == "logistic" and M == 1:
                return inputs, labels.reshape(S, 1).astype(float)
            onehot = np.zeros((S, M))
            onehot[np.arange(S), labels] = 1.0
            return inputs, onehot
        targets = self._sample_exprs("data.targets", required=False, samples=S)
        if targets is None:
            if source != "random":
                raise c.error("a field output needs target expressions", key="data.targets")
            targets = np.zeros((S, mesh.size))
        return inputs, targets

    def _sample_exprs(self, key, required, samples=None):
        c, mesh = self.case, self.mesh
        exprs = c[key]
        if exprs is None:
            if required:
                raise c.error("is required for source = 'expression'", key=key)
            return None
        names = self._names("y") + ("s",)
        env = coordinate_env("y", mesh.centres())
        S = samples or (c["data.samples"] if len(exprs) == 1 and c["data.samples"] else len(exprs))
        if len(exprs) not in (1, S):
            raise c.error(f"has {len(exprs)} expressions for {S} samples", key=key)
        out = np.empty((S, mesh.size))
        for s in range(S):
            e = c.expression(key, names, text=exprs[s if len(exprs) == S else 0])
            out[s] = e(shape=mesh.shape, s=float(s), **env).ravel()
        return out

    # -- running ------------------------------------------------------------
    def work_units(self):
        return 2 * self.schedule.steps

    def saved_steps(self):
        L, every = self.schedule.steps, self.case["time.save_every"]
        return [n for n in range(L + 1) if n % every == 0 or n == L]

    def run(self, sink, progress=lambda k: None):
        net, sched = self.net, self.schedule
        S, cells = self.inputs.shape[0], self.mesh.cells
        saved = self.saved_steps()
        slot = {n: i for i, n in enumerate(saved)}
        want = set(self.saved_fields())
        exact = bool(self.case.get("exact"))
        keep = self.case["time.checkpoint_every"] or "all"
        sink.set_attrs({"samples": S, "steps": sched.steps, "dt": sched.dt, "intervals": sched.intervals,
                        "stepper": self.stepper.name, "activation": net.activation.name,
                        "kernel": net.operator.kind})

        def on_state(n, t, f, lin):
            if n not in slot:
                return
            U = lin[1] if lin is not None else net.pre_activation(f, sched.interval(min(n, sched.steps - 1)))
            fields = {}
            if "f" in want:
                fields["f"] = f.reshape((S,) + cells)
            if "u" in want:
                fields["u"] = U.reshape((S,) + cells)
            diags = {"lyapunov": net.lyapunov(U), "norm_f": net.norm(f)}
            if exact:
                ex = self.exact_fields(t).get("f")
                if ex is not None:
                    diags["error_f"] = float(np.sqrt(np.mean(self.mesh.integrate((f.reshape((S,) + cells) - ex) ** 2))))
            sink.save(t, fields, diags)

        def on_costate(n, lam):
            if n in slot and "r" in want:
                sink.put_field("r", slot[n], (S / self.mesh.cell_volume) * lam.reshape((S,) + cells), len(saved))

        J, grad, metrics, fT = net.loss_and_gradient(self.inputs, self.targets, keep=keep, on_state=on_state,
                                                     on_costate=on_costate, progress=progress)
        for name, p in net.params.items():
            sink.write("controls", name, p)
            sink.write("gradients", name, grad[name], {"meaning": f"dJ/d{name}: exact gradient of the "
                                                                  "discrete loss w.r.t. the array entries"})
        sink.write("controls", "interval_midpoints", self.t_mid)
        sink.write("analysis", "inputs", self.inputs.reshape((S,) + cells))
        sink.write("analysis", "targets", np.asarray(self.targets))
        sink.write("analysis", "output", net.head.output(fT))
        gnorm = float(np.sqrt(sum(np.sum(g * g) for g in grad.values())))
        sink.set_attrs({"loss": J, "gradient_norm": gnorm, **metrics})
        return {"loss": J, "gradient_norm": gnorm, **metrics}
