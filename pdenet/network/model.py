"""Case-file model ``network``: the width-depth network PDE f_t = sigma(a - B_b f)."""
import math

import numpy as np

from solvers import STEPPERS, Schedule, make_stepper

from .activations import NAMES as ACTIVATIONS
from ..case import Key, resolve_time
from ..errors import CaseError
from ..expr import coordinate_env, coordinate_names
from . import ConvolutionOperator, DenseOperator, Head, LowRankOperator, NetworkPDE
from .data import SOURCES, DataError
from .heads import KINDS, LOSSES
from .training import METHODS, train
from ..models.base import Model

INIT = ["expression", "random", "zero"]


def _init_keys(what):
    return {
        "init": Key("str", "expression", f"How {what} is initialised: from `expression`, seeded "
                    "`random` normal entries, or `zero`.", choices=INIT),
        "seed": Key("int", 0, "Seed of the random initialisation."),
        "scale": Key("float", 1.0, "Standard deviation scale of the random initialisation.", minimum=0.0),
    }


class NetworkModel(Model):
    """Width-depth network PDE of Liu & Markowich (PRODUCT.md 1.1): forward, co-state, exact gradients."""

    name = "network"
    unused_keys = ("solver.petsc_options",)
    fields = ("f", "u", "r")
    coordinate_prefix = "y"
    schema = {
        "solver": {
            "distribute": Key("str", "samples", "backend petsc under mpiexec -n P: what is split over the "
                              "ranks. `samples`: each rank solves a block of the samples and holds the whole "
                              "kernel (data parallel). `rows`: each rank holds a block of rows of a dense kernel "
                              "b (memory K N^2 / P) and every sample (for label meshes too large for one rank; "
                              "gd/adam/none only).", choices=["samples", "rows"]),
        },
        "model": {
            "activation": Key("str", "tanh", "sigma.", choices=list(ACTIVATIONS)),
            "intervals": Key("int", 1, "K: controls a, b are piecewise constant on K equal groups of steps "
                             "(K = steps gives one layer per step, a plain ResNet).", positive=True),
            "analysis": Key("bool", False, "Write the forward-problem analysis of Sect. 3 to /analysis: "
                            "spectra of B and B_s per interval, the steady-state range test and null-space "
                            "dimension, Theorem 3.4's Gram matrix and predicted decay rate (lowrank), and "
                            "the linearised operator -sigma'(u)B along the trajectory of sample 0."),
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
                "init": Key("str", "random", "How W is initialised (mu starts at 0): seeded `random` "
                            "normal entries or `zero`.", choices=["random", "zero"]),
                "seed": Key("int", 0, "Seed of the random W (mu starts at 0)."),
                "scale": Key("float", 1.0, "Scale of the random W.", minimum=0.0),
            },
        },
        "data": {
            "source": Key("str", "expression", "Where inputs f_I and targets come from: case-file "
                          "`expression`s, seeded `random` inputs, scikit-learn's 8x8 `digits` (2-D), "
                          "locally generated `mnist1d` signals (1-D, length 40), or an HDF5 `file` "
                          "(datasets inputs (S, *cells), labels (S,), optional test_inputs, test_labels). "
                          "Data sets on their own grid are prolonged onto the label mesh, whose cells "
                          "must be integer multiples of the data grid (Theorem 2.2's width limit).",
                          choices=["expression", "random", *SOURCES]),
            "path": Key("str", None, "file: path of the HDF5 data file (relative to the case file)."),
            "test_fraction": Key("float", 0.2, "digits/file: fraction of the samples held out for testing "
                                 "(a seeded permutation, `seed`).", minimum=0.0),
            "limit": Key("int", 0, "digits/mnist1d/file: use only the first `limit` training samples "
                         "(0: all).", minimum=0),
            "inputs": Key("exprs", None, "expression: one f_I(y) per sample, or one expression of y and "
                          "the sample index s with `samples`."),
            "samples": Key("int", None, "Number of samples S (random source, or one input expression; "
                           "mnist1d: samples generated, default 5000).", positive=True),
            "targets": Key("exprs", None, "l2/logistic on a field output: target(y) per sample (or one "
                           "for all; may use s)."),
            "labels": Key("ints", None, "classes output: integer label per sample (softmax) or 0/1 "
                          "(logistic with classes = 1)."),
            "seed": Key("int", 0, "Seed of the random source, of the train/test split, of mnist1d."),
            "scale": Key("float", 1.0, "Standard deviation of random inputs.", minimum=0.0),
        },
        "train": {
            "method": Key("str", "none", "Training driver (solvers.optim): `none` (one forward and "
                          "co-state solve), projected `gd`, `adam`, `pam` (Algorithm 1), `msa` "
                          "(Algorithm 2), `emsa` (extended MSA).", choices=["none", *METHODS]),
            "iterations": Key("int", 100, "Outer iterations.", minimum=0),
            "lr": Key("float", 0.01, "gd/adam: step size.", positive=True),
            "batch_size": Key("int", 0, "gd/adam: mini-batch size (0: full batch).", minimum=0),
            "seed": Key("int", 0, "Seed of the mini-batch order."),
            "tau": Key("float", 1.0, "pam: proximal step tau.", positive=True),
            "inner_tol": Key("float", 1e-6, "pam: tolerance of each proximal sub-problem (projected "
                             "gradient max-norm).", positive=True),
            "inner_maxiter": Key("int", 200, "pam: iteration cap of each sub-problem (L-BFGS-B).", positive=True),
            "rho": Key("float", 1.0, "emsa: weight rho of the augmented Hamiltonian.", positive=True),
            "controls": Key("strs", ["a"], "msa/emsa: the controls maximised over (a and/or kernel "
                            "parameter names such as b); the rest stay fixed."),
            "head_lr": Key("float", 0.0, "msa/emsa: gradient step on the output weights W, mu after each "
                           "maximisation (they are not controls of the Hamiltonian).", minimum=0.0),
            "box_a": Key("floats", None, "[lower, upper] bound on a (projection; the bang-bang box for msa)."),
            "box_b": Key("floats", None, "[lower, upper] bound on the kernel parameters."),
            "eval_every": Key("int", 1, "Evaluate the held-out loss/accuracy every this many iterations.",
                              positive=True),
        },
    }

    @classmethod
    def validate(cls, data):
        if data["solver"]["backend"] == "petsc":
            import importlib.util

            # data parallel over MPI ranks needs mpi4py only (pdenet/network/distributed.py)
            if importlib.util.find_spec("mpi4py") is None:
                raise CaseError("mpi4py is not installed; install MPI and PETSc with "
                                "scripts/setup-petsc.sh (or use backend = \"builtin\")",
                                key="solver.backend")
        if data["solver"]["distribute"] == "rows":
            cls._validate_rows(data)
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
        tr = data["train"]
        for key in ("box_a", "box_b"):
            box = tr[key]
            if box is not None and (not isinstance(box, list) or len(box) != 2 or box[0] > box[1]):
                raise CaseError(f"expected [lower, upper] with lower <= upper, got {box!r}", key=f"train.{key}")
        if tr["method"] in ("msa", "emsa"):
            if data["time"]["stepper"] != "euler":
                raise CaseError("msa/emsa maximise the explicit-Euler Hamiltonian; use stepper = \"euler\"",
                                key="time.stepper")
            if data["model"]["tikhonov"] != 0.0:
                raise CaseError("msa/emsa with a Tikhonov term are not implemented", key="model.tikhonov")
            if tr["method"] == "msa" and "a" in tr["controls"] and tr["box_a"] is None:
                raise CaseError("plain MSA needs a finite box on a (bang-bang controls)", key="train.box_a")
        if data["data"]["source"] == "file" and not data["data"]["path"]:
            raise CaseError("source = 'file' needs the data file's path", key="data.path")
        return data

    @staticmethod
    def _validate_rows(data):
        """distribute = "rows": a dense kernel, the petsc backend, an elementwise optimiser."""
        where = "solver.distribute"
        if data["solver"]["backend"] != "petsc":
            raise CaseError("distribute = \"rows\" needs backend = \"petsc\" (run under mpiexec)", key=where)
        if data["model"]["kernel"]["kind"] != "dense":
            raise CaseError(f"distribute = \"rows\" splits a dense kernel; kernel kind is "
                            f"{data['model']['kernel']['kind']!r} (use distribute = \"samples\")", key=where)
        if data["train"]["method"] not in ("none", "gd", "adam"):
            raise CaseError(f"distribute = \"rows\" trains with gd or adam only; {data['train']['method']} "
                            "needs the whole kernel on one rank (use distribute = \"samples\")", key=where)
        if data["model"]["analysis"]:
            raise CaseError("model.analysis needs the whole kernel on one rank; use distribute = \"samples\"",
                            key=where)

    def memory_estimate(self):
        """At least: the kernel and its gradient (dense: K N^2 each) and the states kept for the
        backward pass (every step, or every c-th with time.checkpoint_every = c), in float64."""
        c, N = self.case, self.mesh.size
        K, steps, every = c["model.intervals"], c["time.steps"], c["time.checkpoint_every"]
        inputs = c["data.inputs"]
        S = c["data.samples"] or (len(inputs) if c["data.source"] == "expression" and inputs else 1)
        kind = c["model.kernel.kind"]
        if kind == "dense":
            kernel = 2 * K * N * N
        elif kind == "lowrank":
            kernel = 4 * K * N * max(len(c["model.kernel.phi"] or ()), c["model.kernel.rank"])
        else:
            kernel = 2 * K * math.prod(2 * n - 1 for n in self.mesh.cells)
        kept = steps + 1 if not every else steps // every + every
        return 8 * (kernel + kept * S * N)

    # -- construction -------------------------------------------------------
    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        t = case["time"]
        K = case["model.intervals"]
        self.schedule = Schedule(t["steps"], t["dt"], K)
        self.t_mid = np.array([self.schedule.interval_midpoint(k) for k in range(K)])
        s = case["solver"]
        self.stepper = make_stepper(t["stepper"], newton_tol=s["newton_tol"],
                                    newton_maxiter=s["newton_maxiter"], krylov_tol=s["krylov_tol"])
        self.inputs, self.targets = self._data()
        S = self.inputs.shape[0]
        if (s["backend"] == "petsc" and self.comm is not None and not self._rows_wanted()
                and S < self.comm.Get_size()):   # checked again by run; here for validation
            raise case.error(f"{S} samples cannot be split over {self.comm.Get_size()} MPI ranks; run on at "
                             f"most {S} ranks", key="solver.backend")
        self._net = None
        if self._rows_wanted():
            # the kernel's row block depends on the communicator, which the runner sets after
            # construction: build the network on first use; check the expression now
            if case["model.kernel.init"] == "expression":
                case.expression("model.kernel.expression", self._names("y") + self._names("z") + ("t",))
        else:
            self._net = self._build_net()

    def _rows_wanted(self):
        return self.case["solver.distribute"] == "rows" and self.case["solver.backend"] == "petsc"

    def _rows(self):
        """The row-distributed kernel's communicator when it is in use (more than one rank), else None."""
        from .distributed import parallel

        return self.comm if self._rows_wanted() and parallel(self.comm) else None

    @property
    def net(self):
        if self._net is None:
            self._net = self._build_net()
        return self._net

    def _build_net(self):
        return NetworkPDE(self.mesh, self.case["model.activation"], self._bias(), self._operator(self._rows()),
                          self._head(), self.schedule, self.stepper, self.case["model.tikhonov"])

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

    def _operator(self, comm=None):
        """The kernel operator; with ``comm`` (distribute = "rows") the rank's rows of the same b."""
        c, mesh = self.case, self.mesh
        K, N, kind = self.schedule.intervals, mesh.size, c["model.kernel.kind"]
        init, scale = c["model.kernel.init"], c["model.kernel.scale"]
        rng = self._rng("model.kernel.seed")
        if kind == "dense":
            from .distributed import RowDistributedDense, block, normal_rows

            rows = slice(0, N) if comm is None else block(N, comm.Get_rank(), comm.Get_size())
            n = rows.stop - rows.start

            def operator(b):
                return DenseOperator(b) if comm is None else RowDistributedDense(b, N, comm)
            if init == "zero":
                return operator(np.zeros((K, n, N)))
            if init == "random":  # entries of B = h b with standard deviation scale / sqrt(N)
                draws = rng.standard_normal((K, N, N)) if comm is None else normal_rows(rng, K, N, rows)
                draws *= scale                                # in place: no K N^2 temporaries
                draws /= mesh.cell_volume * np.sqrt(N)
                return operator(draws)
            expr = c.expression("model.kernel.expression", self._names("y") + self._names("z") + ("t",))
            yy = [y.reshape(-1, 1)[rows] for y in mesh.centres()]   # (n, 1): the row variable y
            zz = [y.reshape(1, -1) for y in mesh.centres()]         # (1, N): the column variable z
            env = {**coordinate_env("y", yy), **coordinate_env("z", zz)}
            return operator(np.stack([expr(shape=(n, N), t=t, **env) for t in self.t_mid]))
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
        if c["model.output.init"] == "zero":
            W = np.zeros((M, N))
        else:
            W = (self._rng("model.output.seed").standard_normal((M, N)) * c["model.output.scale"]
                 / (h * np.sqrt(N)))
        return Head(kind, loss, h, N, W, np.zeros(M), transform=c["model.output.transform"])

    def _data(self):
        c, mesh = self.case, self.mesh
        source = c["data.source"]
        self.test = None
        if source in SOURCES:
            return self._dataset(source)
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
        if c["model.output.kind"] == "classes":
            labels = c["data.labels"]
            if labels is None:
                if source != "random":
                    raise c.error("classification needs integer labels", key="data.labels")
                labels = self._rng("data.seed").integers(0, max(c["model.output.classes"], 2), S)
            labels = np.atleast_1d(np.asarray(labels, dtype=int))
            if labels.size == 1:
                labels = np.repeat(labels, S)
            if labels.size != S:
                raise c.error(f"{labels.size} labels for {S} samples", key="data.labels")
            return inputs, self._class_targets(labels, "data.labels")
        targets = self._sample_exprs("data.targets", required=False, samples=S)
        if targets is None:
            if source != "random":
                raise c.error("a field output needs target expressions", key="data.targets")
            targets = np.zeros((S, mesh.size))
        return inputs, targets

    def _class_targets(self, labels, key):
        """Integer labels -> what the loss wants: labels (softmax), 0/1 column (logistic, M = 1), one-hot."""
        c = self.case
        M, loss = c["model.output.classes"], c["model.output.loss"]
        if loss == "softmax":
            if labels.min() < 0 or labels.max() >= M:
                raise c.error(f"labels must lie in 0..{M - 1} (model.output.classes = {M})", key=key)
            return labels
        if loss == "logistic" and M == 1:
            return labels.reshape(-1, 1).astype(float)
        if labels.max() >= M:
            raise c.error(f"labels must lie in 0..{M - 1} (model.output.classes = {M})", key=key)
        onehot = np.zeros((labels.size, M))
        onehot[np.arange(labels.size), labels] = 1.0
        return onehot

    def _dataset(self, source):
        """digits / mnist1d / file: load on the data grid, prolong onto the label mesh, split."""
        c, mesh = self.case, self.mesh
        if c["model.output.kind"] != "classes":
            raise c.error(f"source {source!r} has class labels: use model.output.kind = 'classes'",
                          key="model.output.kind")
        seed, limit = c["data.seed"], c["data.limit"]
        try:
            if source == "digits":
                d = SOURCES[source](c["data.test_fraction"], seed, limit)
            elif source == "mnist1d":
                d = SOURCES[source](c["data.samples"] or 5000, seed, limit)
            else:
                path = c.resolve_path(c["data.path"])
                d = SOURCES[source](path, c["data.test_fraction"], seed, limit)
        except DataError as exc:
            raise c.error(str(exc), key="data.source" if source != "file" else "data.path") from None
        if len(d.cells) != mesh.ndim:
            raise c.error(f"the {source} data live on a {len(d.cells)}-D grid {d.cells}; the label mesh is "
                          f"{mesh.ndim}-D", key="mesh.cells")
        grid = type(mesh)(mesh.lower, mesh.upper, list(d.cells), mesh.boundary)
        try:
            grid.refinement_factor(mesh)
        except ValueError:
            raise c.error(f"the label mesh {tuple(mesh.cells)} must be an integer refinement of the data grid "
                          f"{d.cells}", key="mesh.cells") from None
        self.data_description = d.description

        def on_mesh(x):
            return np.ascontiguousarray(grid.prolong(x, mesh).reshape(x.shape[0], mesh.size))
        self.test = (on_mesh(d.test_inputs), self._class_targets(d.test_labels, "data.source"))
        return on_mesh(d.inputs), self._class_targets(d.labels, "data.source")

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
        tr = self.case["train.method"]
        return 2 * self.schedule.steps + (self.case["train.iterations"] if tr != "none" else 0)

    def _parallel(self):
        """The data-parallel evaluator under backend petsc on more than one rank, else None."""
        from .distributed import DataParallel, parallel

        if self.case["solver.backend"] == "petsc" and parallel(self.comm) and not self._rows_wanted():
            return DataParallel(self.net, self.comm)
        return None

    def _train(self, sink, progress):
        """Run the ``[train]`` method; /train/<name> per iteration (k = 0: initial controls)."""
        c = self.case
        options = {k: c["train." + k] for k in ("iterations", "lr", "batch_size", "seed", "tau", "inner_tol",
                                              "inner_maxiter", "rho", "controls", "head_lr", "box_a",
                                              "box_b", "eval_every")}
        options["keep"] = c["time.checkpoint_every"] or "all"
        method = c["train.method"]
        docs = {"loss": "J at the iterate (the mini-batch loss with batch_size > 0)",
                "grad_norm": "Euclidean norm of dJ/dtheta over all parameter entries",
                "step": "||theta^k - theta^(k-1)||", "accuracy": "training accuracy",
                "hamiltonian": "int_0^T H dt at the iterate (msa/emsa)",
                "slack": "pam: J(k-1) - |dtheta|^2/2tau - J(k); >= 0 is the sufficient decrease",
                "test_loss": "held-out loss", "test_accuracy": "held-out accuracy"}

        def write(history):
            for name, values in history.items():
                sink.write("train", name, values, {"meaning": docs[name]} if name in docs else None)
            last = {k: float(v[-1]) for k, v in history.items() if len(v)}
            sink.set_attrs({"train_method": method, "train_iterations": int(len(history.get("loss", [])) - 1),
                            **{f"final_{k}": v for k, v in last.items() if k in docs or k == "full_loss"}})
        try:
            train(self.net, self.inputs, self.targets, method, options, test=self.test, progress=progress,
                  on_history=write, comm=self.comm if self._parallel() is not None else None)
        except ValueError as exc:       # bad controls / boxes detected by the drivers
            raise c.error(str(exc), key="train.method") from None

    def _analysis(self, sink, linear_u):
        """/analysis/* of Sect. 3 for the (trained) controls; returns headline attributes."""
        from ..network import analysis as an
        net, h, K = self.net, self.mesh.cell_volume, self.schedule.intervals
        name = net.activation.name
        mats = [net.operator.matrix(k, h) for k in range(K)]
        specB, specBs = zip(*(an.spectrum(B) for B in mats))
        sink.write("analysis", "spectrum_B", np.array(specB), {"meaning": "eigenvalues of B = h b per interval"})
        sink.write("analysis", "spectrum_Bs", np.array(specBs), {"meaning": "eigenvalues of (B + B^T)/2"})
        steady = [an.steady_state(B, net.a[k], h) for k, B in enumerate(mats)]
        sink.write("analysis", "steady_state_f", np.array([s["f"] for s in steady]))
        sink.write("analysis", "range_residual", np.array([s["range_residual"] for s in steady]),
                   {"meaning": "||B f - a|| / ||a|| at the least-squares f: 0 iff a in R(B)"})
        sink.write("analysis", "nullity", np.array([s["nullity"] for s in steady]))
        out = {"min_spectrum_Bs": float(min(s.min() for s in specBs)),
               "range_residual": float(max(s["range_residual"] for s in steady))}
        if net.operator.kind == "lowrank":
            st = [an.finite_rank_stability(net.operator.phi[k], net.operator.psi[k], h, name) for k in range(K)]
            for key in ("gram", "T", "DT", "eigenvalues"):
                sink.write("analysis", f"thm34_{key}", np.array([s[key] for s in st]))
            sink.write("analysis", "thm34_rate", np.array([s["rate"] for s in st]),
                       {"meaning": "smallest real part of eig(sigma'(0) D T): predicted decay rate of u"})
            out.update({"thm34_rate": st[0]["rate"], "thm34_T_invertible": int(all(s["T_invertible"] for s in st)),
                        "thm34_DT_positive": int(all(s["DT_positive"] for s in st))})
        if linear_u:
            lin = [an.linearised_operator(u, mats[k], name) for _, u, k in linear_u]
            sink.write("analysis", "linearised_times", np.array([t for t, _, _ in linear_u]))
            sink.write("analysis", "linearised_eigenvalues", np.array([l["eigenvalues"] for l in lin]),
                       {"meaning": "eigenvalues of -sigma'(u(t)) B(t) along sample 0"})
            sink.write("analysis", "linearised_growing", np.array([l["growing"] for l in lin]))
            sink.write("analysis", "linearised_decaying", np.array([l["decaying"] for l in lin]))
        return out

    def saved_steps(self):
        return list(self.save_schedule(self.schedule.t_end, self.schedule.steps).steps)

    def run(self, sink, progress=lambda k: None):
        net, sched = self.net, self.schedule
        S, cells = self.inputs.shape[0], self.mesh.cells
        saved = self.saved_steps()
        slot = {n: i for i, n in enumerate(saved)}
        want = set(self.saved_fields())
        exact = bool(self.case.get("exact"))
        analyse, linear_u = self.case["model.analysis"], []
        keep = self.case["time.checkpoint_every"] or "all"
        # under mpiexec with backend petsc: samples in blocks over the ranks; per-sample state is
        # gathered to rank 0, which alone writes it (and computes the diagnostics from it)
        par = self._parallel()
        if par is not None and S < par.size:
            raise self.case.error(f"{S} samples cannot be split over {par.size} MPI ranks; run on at most "
                                  f"{S} ranks", key="solver.backend")
        rows = self._rows()          # distribute = "rows": every rank holds every sample, rank 0 writes
        root = (par is None or par.rank == 0) and (rows is None or rows.Get_rank() == 0)
        engine = net if par is None else par
        sink.set_attrs({"samples": S, "steps": sched.steps, "dt": sched.dt, "intervals": sched.intervals,
                        "stepper": self.stepper.name, "activation": net.activation.name,
                        "kernel": net.operator.kind})
        if self.case["solver.backend"] == "petsc":
            sink.set_attrs({"petsc_ranks": par.size if par is not None else rows.Get_size() if rows else 1})
        if getattr(self, "data_description", None):
            sink.set_attrs({"data": self.data_description})
        if self.case["train.method"] != "none":
            self._train(sink, progress)

        def on_state(n, t, f, lin):
            if n not in slot:
                return
            U = lin[1] if lin is not None else net.pre_activation(f, sched.interval(min(n, sched.steps - 1)))
            if par is not None:
                f, U = par.gather(f, S), par.gather(U, S)
            if not root:
                return
            fields = {}
            if "f" in want:
                fields["f"] = f.reshape((S,) + cells)
            if "u" in want:
                fields["u"] = U.reshape((S,) + cells)
            diags = {"lyapunov": net.lyapunov(U), "norm_f": net.norm(f), "norm_u": net.norm(U)}
            if analyse:
                linear_u.append((t, U[0].copy(), sched.interval(min(n, sched.steps - 1))))
            if exact:
                ex = self.exact_fields(t).get("f")
                if ex is not None:
                    diags["error_f"] = float(np.sqrt(np.mean(self.mesh.integrate((f.reshape((S,) + cells) - ex) ** 2))))
            sink.save(t, fields, diags)

        def on_costate(n, lam):
            if n in slot and "r" in want:
                if par is not None:
                    lam = par.gather(lam, S)
                if not root:
                    return
                sink.put_field("r", slot[n], (S / self.mesh.cell_volume) * lam.reshape((S,) + cells), len(saved))

        J, grad, metrics, fT = engine.loss_and_gradient(self.inputs, self.targets, keep=keep, on_state=on_state,
                                                        on_costate=on_costate, progress=progress)
        output = net.head.output(fT)
        if par is not None:
            output = par.gather(output, S)
        gnorm = float(np.sqrt(net.sqnorm(grad)))
        for name, p in net.params.items():
            g = grad[name]
            if rows is not None and name in net.operator.distributed:   # row blocks -> rank 0
                p, g = net.operator.gather(p), net.operator.gather(g)
                if p is None:      # not rank 0
                    continue
            sink.write("controls", name, p)
            sink.write("gradients", name, g, {"meaning": f"dJ/d{name}: exact gradient of the "
                                                         "discrete loss w.r.t. the array entries"})
        sink.write("controls", "interval_midpoints", self.t_mid)
        sink.write("analysis", "inputs", self.inputs.reshape((S,) + cells))
        sink.write("analysis", "targets", np.asarray(self.targets))
        if root:
            sink.write("analysis", "output", output)
        summary = {"loss": J, "gradient_norm": gnorm, **metrics}
        if analyse and root:
            summary.update(self._analysis(sink, linear_u))
        if self.test is not None:
            Jt, mt = engine.loss(*self.test)
            summary.update({"test_loss": Jt, **{"test_" + k: v for k, v in mt.items()}})
        sink.set_attrs(summary)
        return summary
