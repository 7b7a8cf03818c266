"""Case-file model ``network``: the width-depth network PDE f_t = sigma(a - B_b f)."""
import contextlib
import math
from typing import NamedTuple

import numpy as np

from solvers import STEPPERS, Schedule, make_stepper
from solvers.march import Frame

from . import analysis, build
from .activations import NAMES as ACTIVATIONS
from ..case import Key, resolve_time
from ..errors import CaseError
from ..io.sink import SinkWriter
from .data import SOURCES
from .heads import KINDS, LOSSES
from .pde import NetworkPDE
from .methods import OPTIONS as THESIS_OPTIONS, SCHEMA as THESIS_KEYS, validate as validate_thesis_keys
from .sgd_noise import NoiseRecorder
from .training import METHODS, train
from ..models.base import Model

INIT = ["expression", "random", "zero"]


def _init_keys(what):
    return {
        "init": Key("str", "expression", f"How {what} is initialised: from `expression`, seeded "
                    "`random` normal entries, or `zero`.", choices=INIT),
        "seed": Key("int", 0, "Seed of the random initialisation.", minimum=0),
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
                "seed": Key("int", 0, "Seed of the random W (mu starts at 0).", minimum=0),
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
            "seed": Key("int", 0, "Seed of the random source, of the train/test split, of mnist1d.", minimum=0),
            "scale": Key("float", 1.0, "Standard deviation of random inputs.", minimum=0.0),
        },
        "train": {
            "method": Key("str", "none", "Training driver (solvers.optim): `none` (one forward and "
                          "co-state solve), projected `gd`, `adam`, `pam` (Algorithm 1), `msa` "
                          "(Algorithm 2), `emsa` (extended MSA), `maml` (meta-learning on sine tasks, review §5); "
                          "the thesis's drivers (pdenet/network/methods.py) `momentum`, `nesterov`, "
                          "`entropy-sgd`, `hj`, `heat`, `elastic`, `parle`.", choices=["none", *METHODS]),
            "iterations": Key("int", 100, "Outer iterations.", minimum=0),
            "lr": Key("float", 0.01, "gd/adam: step size.", positive=True),
            "batch_size": Key("int", 0, "Mini-batch size (0: full batch); every method but pam (msa/emsa: "
                              "the sampled PMP, each sweep and maximisation on the next batch).", minimum=0),
            "seed": Key("int", 0, "Seed of the mini-batch order.", minimum=0),
            "tau": Key("float", 1.0, "pam: proximal step tau.", positive=True),
            "inner_tol": Key("float", 1e-6, "pam: tolerance of each proximal sub-problem (projected "
                             "gradient max-norm); msa/emsa: of each interval's Hamiltonian maximisation "
                             "(L-BFGS-B gtol).", positive=True),
            "inner_maxiter": Key("int", 200, "pam/msa/emsa: iteration cap of each sub-problem (L-BFGS-B).",
                                 positive=True),
            "rho": Key("float", 1.0, "emsa: weight rho of the augmented Hamiltonian (quadrature units: "
                       "1/rho ~ an L^2 step size, independent of the mesh).", positive=True),
            "controls": Key("strs", ["a"], "msa/emsa: the controls maximised over (a, kernel "
                            "parameter names such as b, and W: the output layer W, mu, emsa only); the rest "
                            "stay fixed."),
            "head_lr": Key("float", 0.0, "msa/emsa without W in controls: gradient step on the output weights "
                           "W, mu after each maximisation.", minimum=0.0),
            "box_a": Key("floats", None, "[lower, upper] bound on a (projection; the bang-bang box for msa)."),
            "box_b": Key("floats", None, "[lower, upper] bound on the kernel parameters."),
            "eval_every": Key("int", 1, "Evaluate the held-out loss/accuracy every this many iterations.",
                              positive=True),
            **THESIS_KEYS,
            # review §5: risk-aware objective (network/risk.py), adversarial training (network/adversarial.py)
            "risk_k": Key("float", 0.0, "Risk-aware objective (1/k) log mean exp(k Phi_s): k > 0 risk averse, "
                          "k < 0 risk seeking, 0 the mean loss (gd/adam/pam)."),
            "adversary": Key("str", "none", "Adversarial training (minimax, gd/adam): `fgsm` (one step) or "
                             "`pgd` on the input co-state lambda_0; `none`.", choices=["none", "fgsm", "pgd"]),
            "adversary_eps": Key("float", 0.1, "Radius of the perturbation ball.", positive=True),
            "adversary_norm": Key("str", "linf", "Ball: `linf` or `l2` (the L2(Y) norm).", choices=["linf", "l2"]),
            "adversary_steps": Key("int", 10, "pgd: ascent steps.", positive=True),
            "adversary_alpha": Key("float", 0.0, "pgd: step size (0: 2.5 eps / steps).", minimum=0.0),
            "maml_inner_lr": Key("float", 0.5, "maml: inner-loop (adaptation) step alpha.", positive=True),
            "maml_inner_steps": Key("int", 1, "maml: inner gradient steps N.", positive=True),
            "maml_order": Key("int", 2, "maml: 2 exact meta-gradient (Hessian-vector products by central "
                              "differences of adjoint gradients), 1 first-order MAML.", choices=[1, 2]),
            "maml_meta_batch": Key("int", 5, "maml: tasks per outer step.", positive=True),
            "maml_shots": Key("int", 10, "maml: support (and query) samples per task.", positive=True),
            "adversary_mix": Key("float", 0.0, "Mixture ratio alpha of the review's eq. 57: minimise "
                                 "alpha J(clean) + (1 - alpha) J(attacked); 0: the pure minimax (56).", minimum=0.0),
            "robust_eval": Key("bool", False, "Record the held-out accuracy under the adversary_* attack "
                               "(fgsm when adversary = none) even without adversarial training."),
            "init_from": Key("str", None, "Warm start: an earlier network run's HDF5 file (relative to the "
                             "case file) whose /controls replace the initial a, kernel, W, mu (same "
                             "shapes)."),
        },
        "sgd_noise": {
            "where": Key("str", "none", "When to compute the mini-batch noise covariance Sigma_D of the "
                         "training samples (pdenet.network.sgd_noise): `none`, at the `initial` or `final` "
                         "parameters, or `every` `every` training iterations (k = 0, every, 2 every, ... "
                         "and the last).", choices=["none", "initial", "final", "every"]),
            "every": Key("int", 10, "where = every: the iteration stride.", positive=True),
            "eigenvalues": Key("int", 10, "How many of the largest eigenvalues (Lanczos on the operator "
                               "v -> Sigma_D v; at most the parameter count).", positive=True),
            "tolerance": Key("float", 1e-8, "Numerical rank: eigenvalues above this times the largest.",
                             positive=True),
            "method": Key("str", "lanczos", "`lanczos` (scipy eigsh on the operator), `gram` (eigh of "
                          "the S x S Gram matrix of centred per-sample gradients) or `dense` (numpy eigh "
                          "of the P x P matrix: small networks only).", choices=["lanczos", "gram", "dense"]),
            "batch_size": Key("int", 0, "l of the mini-batch factors written as attributes (0: "
                              "train.batch_size, or 1 when that is 0).", minimum=0),
        },
        "trajectory": {
            "weights": Key("int", 0, "Record this many parameter entries (seeded random choice, flat order "
                           "of /controls) at every training iteration and write the spectrum and "
                           "autocorrelation of their increments to /analysis (pdenet.sgd.trajectory). "
                           "0: off.", minimum=0),
            "lags": Key("int", 50, "Autocorrelation lags.", positive=True),
            "seed": Key("int", 0, "Seed of the choice of entries.", minimum=0),
        },
        "hessian": {
            "eigenvalues": Key("int", 0, "At the final parameters: this many of the largest and of the "
                               "smallest Hessian eigenvalues of the training loss by Lanczos on exact "
                               "Hessian-vector products (second-order adjoint; every stepper and kernel, "
                               "kernel, identity/l2 or classes/softmax head). 0: off.", minimum=0),
            "tolerance": Key("float", 1e-6, "Relative accuracy of the Lanczos eigenvalues (scipy eigsh tol).",
                             positive=True),
            "maxiter": Key("int", 0, "Cap on eigsh restarts (0: scipy's default); on reaching it the "
                           "converged eigenvalues are written, NaN for the rest.", minimum=0),
            "probes": Key("int", 4, "Stochastic Lanczos quadrature: Rademacher probe vectors.", positive=True),
            "steps": Key("int", 60, "Stochastic Lanczos quadrature: Lanczos steps per probe.", positive=True),
            "width": Key("float", 0.0, "Gaussian broadening of the density (0: 1% of the spectral range).",
                         minimum=0.0),
            "near_zero": Key("float", 1e-3, "hessian_fraction_near_zero counts SLQ weight with "
                             "|lambda| <= near_zero x the largest |eigenvalue|.", positive=True),
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
        if tr["adversary_mix"] > 1.0:
            raise CaseError(f"a mixture ratio lies in [0, 1], got {tr['adversary_mix']}", key="train.adversary_mix")
        for key in ("box_a", "box_b"):
            box = tr[key]
            if box is not None and (not isinstance(box, list) or len(box) != 2 or box[0] > box[1]):
                raise CaseError(f"expected [lower, upper] with lower <= upper, got {box!r}", key=f"train.{key}")
        if tr["method"] in ("msa", "emsa"):
            if data["time"]["stepper"] != "euler":
                raise CaseError("msa/emsa maximise the explicit-Euler Hamiltonian; use stepper = \"euler\"",
                                key="time.stepper")
            if tr["method"] == "msa" and "a" in tr["controls"] and tr["box_a"] is None:
                raise CaseError("plain MSA needs a finite box on a (bang-bang controls)", key="train.box_a")
        validate_thesis_keys(tr)
        if data["trajectory"]["weights"] and tr["method"] in ("msa", "emsa"):
            raise CaseError("trajectory recording follows the gradient methods (gd, adam, pam)",
                            key="trajectory.weights")
        if data["trajectory"]["weights"] and data["solver"]["backend"] == "petsc":
            raise CaseError("trajectory recording runs on one process (backend = \"builtin\")",
                            key="trajectory.weights")
        hess = data["hessian"]
        if hess["eigenvalues"]:
            from .hessian import SUPPORTED

            out_ok = (out["kind"], out["loss"]) in (("identity", "l2"), ("classes", "softmax"))
            for what, value in (("stepper", data["time"]["stepper"]), ("kernel", data["model"]["kernel"]["kind"]),
                                ("activation", data["model"]["activation"])):
                if value not in SUPPORTED[what]:
                    raise CaseError(f"Hessian-vector products are implemented for {what} "
                                    f"{' / '.join(SUPPORTED[what])}; the case has {value!r}", key="hessian.eigenvalues")
            if not out_ok:
                raise CaseError("Hessian-vector products are implemented for the identity/l2 and classes/softmax "
                                "outputs", key="hessian.eigenvalues")
            if data["solver"]["backend"] == "petsc":
                raise CaseError("the Hessian spectrum runs on one process (backend = \"builtin\")",
                                key="hessian.eigenvalues")
        noise = data["sgd_noise"]
        if noise["where"] == "every" and tr["method"] == "none":
            raise CaseError("where = \"every\" needs a training method (train.method is \"none\")",
                            key="sgd_noise.where")
        if noise["where"] != "none" and tr["method"] in ("msa", "emsa"):
            raise CaseError("the SGD noise is computed for gradient methods (gd, adam, pam); "
                            f"train.method is {tr['method']!r}", key="sgd_noise.where")
        if noise["where"] != "none" and data["solver"]["backend"] == "petsc":
            raise CaseError("the SGD noise runs on one process (backend = \"builtin\")", key="sgd_noise.where")
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

    def memory_counts(self):
        """The output layer (M x N weights, their gradient and optimiser moments)."""
        c = self.case
        M = c["model.output.classes"] if c["model.output.kind"] == "classes" else 1
        return {"model.output.classes": 8 * 4 * M * self.mesh.size}

    # -- construction: the validation phase -----------------------------------------------
    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        t = case["time"]
        K = case["model.intervals"]
        self.schedule = Schedule(t["steps"], t["dt"], K)
        self.t_mid = np.array([self.schedule.interval_midpoint(k) for k in range(K)])
        s = case["solver"]
        self.stepper = make_stepper(t["stepper"], newton_tol=s["newton_tol"],
                                    newton_maxiter=s["newton_maxiter"], krylov_tol=s["krylov_tol"])
        data = build.data(case, self.mesh)
        self.inputs, self.targets, self.test = data.inputs, data.targets, data.test
        self.data_description = data.description
        self._net = None
        if self._rows_wanted():
            # the kernel's row block depends on the communicator's rank: build the network on
            # first use; check the expression now
            build.check_kernel_expression(case, self.mesh)
        else:
            self._net = self._build_net()
        self.saved_fields(), self.saved_steps()     # output.fields, time.outputs/save_every
        S, ranks = self.inputs.shape[0], self.comm.Get_size() if self.comm is not None else 1
        if case["solver.backend"] == "petsc" and not self._rows_wanted() and S < ranks:
            raise case.error(f"{S} samples cannot be split over {ranks} MPI ranks; run on at most "
                             f"{S} ranks", key="solver.backend")

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
        c, mesh = self.case, self.mesh
        net = NetworkPDE(mesh, c["model.activation"], build.bias(c, mesh, self.t_mid),
                         build.operator(c, mesh, self.t_mid, self._rows()), build.head(c, mesh),
                         self.schedule, self.stepper, c["model.tikhonov"])
        if c["train.init_from"]:    # a warm start from another run's controls
            from .warmstart import warm_start
            warm_start(net, c)
        return net

    # -- running ------------------------------------------------------------
    def work_units(self):
        tr = self.case["train.method"]
        return 2 * self.schedule.steps + (self.case["train.iterations"] if tr != "none" else 0)

    def saved_steps(self):
        return list(self.save_schedule(self.schedule.t_end, self.schedule.steps).steps)

    def _parallel(self):
        """The data-parallel evaluator under backend petsc on more than one rank, else None."""
        from .distributed import DataParallel, parallel

        if self.case["solver.backend"] == "petsc" and parallel(self.comm) and not self._rows_wanted():
            return DataParallel(self.net, self.comm)
        return None

    def run(self, sink, progress=lambda k: None):
        net, S = self.net, self.inputs.shape[0]
        # under mpiexec with backend petsc: samples in blocks over the ranks (par), or the kernel's
        # rows (rows); per-sample state is gathered to rank 0, which alone writes it
        par, rows = self._parallel(), self._rows()
        root = (par is None or par.rank == 0) and (rows is None or rows.Get_rank() == 0)
        linear_u = []           # (t, u of sample 0, k) at the saved steps, for model.analysis
        forward, costate = self._observers(sink, linear_u)
        sink.set_attrs(self._run_attrs(par, rows))
        noise = NoiseRecorder(self.case, net, self.inputs, self.targets)   # [sgd_noise]
        traj = None
        if self.case["trajectory.weights"] and self.case["train.method"] != "none":
            from ..sgd.trajectory import TrajectoryRecorder

            traj = TrajectoryRecorder(net, self.case["trajectory.weights"], self.case["trajectory.lags"],
                                      self.case["trajectory.seed"])
        if self.case["train.method"] != "none":
            self._train(sink, progress, noise, traj)
        noise.finish()
        if root:
            noise.write(sink)
            if traj is not None:
                traj.write(sink)
        if self.case["hessian.eigenvalues"]:
            self._hessian(sink)
        # forward + co-state at the (trained) controls, observed at the saved steps
        J, grad, metrics, fT = self._solve(par, root, forward, costate, progress)
        self._write_controls(sink, grad, rows, root, par, fT)
        summary = {"loss": J, "gradient_norm": float(np.sqrt(net.sqnorm(grad))), **metrics}
        if self.case["model.analysis"] and root:
            arrays, headline = analysis.forward_analysis(net, self.mesh.cell_volume, linear_u)
            for name, arr, meaning in arrays:
                sink.write("analysis", name, arr, {"meaning": meaning} if meaning else None)
            summary.update(headline)
        if self.test is not None:
            Jt, mt = (net if par is None else par).loss(*self.test)
            summary.update({"test_loss": Jt, **{"test_" + k: v for k, v in mt.items()}})
        sink.set_attrs(summary)
        return summary

    def _run_attrs(self, par, rows):
        net, sched = self.net, self.schedule
        attrs = {"samples": self.inputs.shape[0], "steps": sched.steps, "dt": sched.dt,
                 "intervals": sched.intervals, "stepper": self.stepper.name,
                 "activation": net.activation.name, "kernel": net.operator.kind}
        if self.case["solver.backend"] == "petsc":
            attrs["petsc_ranks"] = par.size if par is not None else rows.Get_size() if rows else 1
        if self.data_description:
            attrs["data"] = self.data_description
        return attrs

    # -- the observers of the forward and co-state solves -------------------------------------
    def _observers(self, sink, linear_u):
        """(forward, co-state) observers; a frame's state is a :class:`Layer` (rank 0, gathered)."""
        net, want = self.net, set(self.saved_fields())
        S, cells = self.inputs.shape[0], self.mesh.cells

        def fields(frame):
            f, u = frame.state.f, frame.state.u
            if "f" in want:
                frame.fields["f"] = f.reshape((S,) + cells)
            if "u" in want:
                frame.fields["u"] = u.reshape((S,) + cells)

        def lyapunov(frame):
            f, u = frame.state.f, frame.state.u
            frame.diagnostics.update(lyapunov=net.lyapunov(u), norm_f=net.norm(f), norm_u=net.norm(u))

        def exact(frame):
            frame.diagnostics.update(self.exact_errors("f", frame.t, frame.state.f.reshape((S,) + cells)))

        def linearised(frame):      # sample 0 along the trajectory, for model.analysis
            linear_u.append((frame.t, frame.state.u[0].copy(), frame.state.k))

        def costate(frame):         # the paper's r = S lambda / h
            frame.fields["r"] = (S / self.mesh.cell_volume) * frame.state.reshape((S,) + cells)

        forward = [fields, lyapunov]
        if "f" in (self.case.get("exact") or {}):
            forward.append(exact)
        if self.case["model.analysis"]:
            forward.append(linearised)
        forward.append(SinkWriter(sink))
        saved = self.saved_steps()
        back = [costate, SinkWriter(sink, put=True, n_saved=len(saved))] if "r" in want else []
        return forward, back

    def _solve(self, par, root, forward, costate, progress):
        """Forward and co-state solve (exact discrete adjoint) with the observers at the saved steps."""
        net, sched, S = self.net, self.schedule, self.inputs.shape[0]
        slot = {n: i for i, n in enumerate(self.saved_steps())}

        def on_state(n, t, f, lin):
            if n not in slot:
                return
            k = sched.interval(min(n, sched.steps - 1))
            U = lin[1] if lin is not None else net.pre_activation(f, k)
            if par is not None:
                f, U = par.gather(f, S), par.gather(U, S)
            if root:
                _observe(forward, Frame(slot[n], t, Layer(n, k, f, U)))

        def on_costate(n, lam):
            if n in slot and costate:
                if par is not None:
                    lam = par.gather(lam, S)
                if root:
                    _observe(costate, Frame(slot[n], sched.time(n), lam))

        engine = net if par is None else par
        return engine.loss_and_gradient(self.inputs, self.targets, keep=self.case["time.checkpoint_every"] or "all",
                                        on_state=on_state, on_costate=on_costate, progress=progress)

    def _write_controls(self, sink, grad, rows, root, par, fT):
        """/controls, /gradients (row blocks of a distributed kernel gathered to rank 0), /analysis data."""
        net, S, cells = self.net, self.inputs.shape[0], self.mesh.cells
        output = net.head.output(fT)
        if par is not None:
            output = par.gather(output, S)
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

    def _hessian(self, sink):
        """[hessian]: extreme eigenvalues and the SLQ spectral density at the final parameters."""
        from . import hessian

        c, net = self.case, self.net
        P = sum(p.size for p in net.params.values())
        k = min(c["hessian.eigenvalues"], P - 1)
        top, bottom = hessian.spectrum(net, self.inputs, self.targets, k=k, tol=c["hessian.tolerance"],
                                       maxiter=c["hessian.maxiter"] or None)
        op = hessian.hessian_operator(net, self.inputs, self.targets)
        nodes, weights = hessian.slq_nodes(op.matvec, P, c["hessian.probes"], c["hessian.steps"])
        lo, hi = np.nanmin([bottom[0], nodes.min()]), np.nanmax([top[0], nodes.max()])
        width = c["hessian.width"] or 0.01 * (hi - lo)
        grid = np.linspace(lo - 5 * width, hi + 5 * width, 1001)
        density = hessian.slq_density(nodes, weights, grid, width)
        scale = float(np.nanmax(np.abs([top[0], bottom[0], nodes.max(), nodes.min()])))
        near = float(weights[np.abs(nodes) <= c["hessian.near_zero"] * scale].sum())
        meaning = "Hessian of the training loss J at the final parameters (exact Hessian-vector products)"
        sink.write("analysis", "hessian_eigenvalues", top, {"meaning": meaning, "order": "descending"})
        sink.write("analysis", "hessian_eigenvalues_bottom", bottom, {"meaning": meaning, "order": "ascending"})
        sink.write("analysis", "hessian_density_grid", grid)
        sink.write("analysis", "hessian_density", density, {"meaning": "stochastic Lanczos quadrature "
                                                                       f"density, Gaussian width {width:.3g}"})
        sink.write("analysis", "hessian_slq_nodes", nodes)
        sink.write("analysis", "hessian_slq_weights", weights)
        sink.set_attrs({"hessian_fraction_near_zero": near, "hessian_near_zero": float(c["hessian.near_zero"]),
                        "hessian_max_eigenvalue": float(top[0]), "hessian_min_eigenvalue": float(bottom[0])})

    # -- training -------------------------------------------------------------------------------
    def _train(self, sink, progress, noise=None, traj=None):
        """Run the ``[train]`` method; /train/<name> per iteration (k = 0: initial controls)."""
        c = self.case
        options = {k: c["train." + k] for k in ("iterations", "lr", "batch_size", "seed", "tau", "inner_tol",
                                              "inner_maxiter", "rho", "controls", "head_lr", "box_a",
                                              "box_b", "eval_every", *THESIS_OPTIONS, "risk_k", "adversary", "adversary_eps",
                                              "adversary_norm", "adversary_steps", "adversary_alpha", "adversary_mix", "robust_eval",
                                              "maml_inner_lr", "maml_inner_steps", "maml_order", "maml_meta_batch",
                                              "maml_shots")}
        options["keep"] = c["time.checkpoint_every"] or "all"
        method = c["train.method"]
        from ..restart import join_history, training_resume, write_adam_state

        resume = training_resume()   # pdenet run --resume: (adam state, /train records so far) or None
        state = dict(resume[0]) if resume else {}
        rows, net = self._rows(), self.net

        def whole(name, arr):    # a row-distributed kernel's blocks gathered on rank 0 (None elsewhere)
            return net.operator.gather(arr) if rows is not None and name in net.operator.distributed else arr

        def write(history):
            if resume:
                history = join_history(resume[1], history)
            with getattr(sink, "atomic", contextlib.nullcontext)():   # all /train records of one checkpoint
                if "it" in state:   # adam's restart point (pdenet run --resume)
                    write_adam_state(sink, state, whole)
                for name, values in history.items():
                    sink.write("train", name, values, {"meaning": TRAIN_DOCS[name]} if name in TRAIN_DOCS else None)
            last = {k: float(v[-1]) for k, v in history.items() if len(v)}
            sink.set_attrs({"train_method": method, "train_iterations": int(len(history.get("loss", [])) - 1),
                            **{f"final_{k}": v for k, v in last.items() if k in TRAIN_DOCS or k == "full_loss"}})
        try:
            train(self.net, self.inputs, self.targets, method, options, test=self.test, progress=progress,
                  on_history=write, comm=self.comm if self._parallel() is not None else None,
                  state=state if method == "adam" else None,
                  on_iterate=lambda k: [r.on_iterate(k) for r in (noise, traj) if r is not None])
        except ValueError as exc:       # bad controls / boxes detected by the drivers
            raise c.error(str(exc), key="train.method") from None


TRAIN_DOCS = {"loss": "J at the iterate (the mini-batch loss with batch_size > 0)",
              "grad_norm": "Euclidean norm of dJ/dtheta over all parameter entries",
              "step": "||theta^k - theta^(k-1)||", "accuracy": "training accuracy",
              "hamiltonian": "int_0^T H dt at the iterate (msa/emsa)",
              "slack": "pam: J(k-1) - |dtheta|^2/2tau - J(k); >= 0 is the sufficient decrease",
              "test_loss": "held-out loss", "test_accuracy": "held-out accuracy",
              "gradient_evaluations": "cumulative gradient evaluations (mini-batch ones with batch_size > 0)",
              "gamma": "scope gamma_k of the outer iteration (entropy-sgd, hj, parle; heat: the variance)",
              "coupling": "coupling rho_k of the replicas (elastic, parle)",
              "mean_loss": "risk_k: mean of the per-sample losses", "loss_std": "risk_k: their standard deviation",
              "test_robust_accuracy": "adversary: held-out accuracy under the attack (first and last iteration)",
              "maml_query_loss_before": "maml: mean query loss on 100 held-out tasks without adaptation",
              "maml_query_loss_adapted": "maml: mean query loss on 100 held-out tasks after the inner steps",
              "maml_query_loss_adapted_stderr": "maml: its standard error"}


class Layer(NamedTuple):
    """A forward frame's state: step n, its control interval k, f and u = a_k - B_k f (S, N)."""

    n: int
    k: int
    f: np.ndarray
    u: np.ndarray


def _observe(observers, frame):
    for obs in observers:
        obs(frame)
