"""Case-file model ``fokker-planck``: rho_t = div(rho grad f) - div(b rho) + div(D grad rho).

Finite volumes with Scharfetter-Gummel fluxes (:mod:`pdenet.fokkerplanck.fv`), explicit
(numba, automatic stable step), implicit Euler, BDF2 and Crank-Nicolson (sparse LU,
:mod:`solvers.linear`) or a direct steady-state solve; diagnostics per save, first-passage
times with an absorbing set, and an SDE particle ensemble of the same drift and diffusion.

This module reads the case: it builds the coefficients (:mod:`.coefficients`), the stepper as a
fixed-step system (:mod:`.systems`) and the per-save observers (:mod:`.observers`), marches them
with :func:`solvers.march.march` and writes the analysis after the march (:mod:`.analysis`).
The numerics raise ``ValueError``; the model names the case key.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from solvers.linear import steady_state
from solvers.march import Frame, march, require_finite

from ..case import THREADS_KEY, Key, resolve_time
from ..errors import CaseError
from ..expr import coordinate_env, coordinate_names
from ..io.sink import SinkWriter
from ..models.base import Model
from . import analysis
from . import diagnostics as fpd
from .coefficients import Coefficients, Diffusion, Drift, Potential
from .fv import ABSORBING, FokkerPlanckOperator, TensorField, boundary_kinds, face_coordinates
from .observers import DensityDiagnostics, Last, Particles, SGDChains, SteadyComparison, with_state
from .particles import ParticleEnsemble
from .systems import DmdaExplicitSystem, ExplicitSystem, ImplicitSystem, PetscLinearSystem

STEPPERS = ("explicit", "beuler", "bdf2", "cn", "steady")
#: steppers that [solver] backend = "petsc" runs (solvers.petsc_backend; explicit on a DMDA,
#: pdenet.fokkerplanck.dmda)
PETSC_STEPPERS = STEPPERS
#: diagnostics of the last save copied to the run's summary attributes
SUMMARY = ("mass", "free_energy", "relative_entropy", "circulation", "error_rho_l2", "error_rho_max", "min_rho",
           "sgd_l1", "sgd_mean", "sgd_var", "kl_to_steady", "residual_div_j_rho", "residual_j_dot_grad_phi",
           "error_phi_l2", "error_phi_max")


class FokkerPlanckModel(Model):
    """Fokker-Planck equation rho_t = div(rho grad f) - div(b rho) + div(D grad rho) (PRODUCT.md 1.2)."""

    name = "fokker-planck"
    unused_keys = ("time.checkpoint_every", "solver.newton_tol", "solver.newton_maxiter")
    coordinate_prefix = "x"
    schema = {
        "solver": {"threads": THREADS_KEY},
        "time": {
            "stepper": Key("str", "explicit", "explicit (forward Euler, numba; automatic stable step "
                           "when dt is not given) | beuler | bdf2 | cn (sparse LU) | steady (direct "
                           "steady-state solve, one save).", choices=list(STEPPERS)),
        },
        "model": {
            "potential": Key("expr", None, "f(x): the drift is -grad f (Scharfetter-Gummel fluxes; "
                             "the discrete Gibbs density exp(-f/D) is then an exact steady state)."),
            "drift": Key("exprs", None, "b(x): extra drift velocity, one expression per component "
                         "(non-gradient drift), sampled at the face centres."),
            "diffusion": Key("any", 1.0, "D: a number; an expression of x and t (isotropic field, "
                             "or annealing D(t)); a list of ndim numbers/expressions (diagonal); or an "
                             "ndim x ndim list of lists of numbers (constant symmetric positive-definite "
                             "tensor) or of expressions of x and t (a state-dependent tensor D(x), "
                             "checked symmetric positive definite on every cell)."),
            "form": Key("str", "ito", "How a state-dependent D enters: ito (rho_t = ... + "
                        "div(div(D rho)), the law of dX = b dt + sqrt(2D) dB read in Ito's sense, "
                        "thesis (6.8)) or fick (rho_t = ... + div(D grad rho), Remark 6.9). The same "
                        "equation for a constant D. The particles use the same convention.",
                        choices=["ito", "fick"]),
            "initial": Key("expr", None, "rho(x, 0) (normalised to mass 1 unless "
                           "normalise = false). Required except for stepper = steady."),
            "normalise": Key("bool", True, "Scale the initial density to mass 1."),
            "absorbing": Key("expr", None, "Absorbing set: cells whose centre makes this expression "
                             "positive hold rho = 0 (mass entering them is lost)."),
            "mfpt_from": Key("floats", None, "A point: report the mean first-passage time to the "
                             "absorbing set (boundaries or set) from there (attribute mfpt_at_point)."),
            "kramers": Key("floats", None, "[x_min, x_saddle] of a 1-D potential: report Kramers' "
                           "time 2 pi/sqrt(f''(x_min)|f''(x_s)|) exp((f(x_s)-f(x_min))/D) beside the MFPT."),
            "nonequilibrium": Key("bool", False, "Out-of-equilibrium diagnostics of the steady state "
                                  "(thesis ch. 6): the implicit potential phi = -T log rho_ss (min 0), the "
                                  "conservative force j = J_ss/rho_ss, their residuals, the most likely "
                                  "points beside the drift's zeros (/analysis); a time-dependent run also "
                                  "solves for rho_ss and reports kl_to_steady at every save."),
            "temperature": Key("float", None, "T of phi = -T log rho_ss and kl_to_steady = T KL(rho|rho_ss) "
                               "(default: the scalar D when the diffusion is isotropic and constant, else 1).",
                               positive=True),
            "cfl": Key("float", 0.9, "explicit: fraction of the largest positivity-preserving step "
                       "1/max|A_ii| used when dt is not given (or the check on a given dt).",
                       positive=True),
        },
        "sgd": {
            "loss": Key("str", None, "SGD's own diffusion for a one- or two-parameter model (1-D/2-D "
                        "mesh = the parameters theta): linear (least squares) or logistic. Replaces "
                        "potential, drift and diffusion by f(theta) = mean loss and D = lr Sigma(theta)/"
                        "(2 batch) in the Ito form (2-D: the full state-dependent 2 x 2 tensor).",
                        choices=["linear", "logistic"]),
            "samples": Key("int", 200, "Data set size N (x_k standard normal, seeded).", positive=True),
            "theta_star": Key("floats", 1.0, "Parameter generating the data (2-D: one number or two)."),
            "feature_scales": Key("floats", [1.0, 1.0], "2-D: standard deviations of the two features "
                                  "(unequal: non-isotropic mini-batch noise)."),
            "feature_correlation": Key("float", 0.0, "2-D: correlation of the two features."),
            "noise": Key("float", 0.5, "linear: standard deviation of the label noise.", minimum=0.0),
            "seed": Key("int", 0, "Seed of the data set.", minimum=0),
            "lr": Key("float", 0.1, "SGD learning rate (time t = steps * lr).", positive=True),
            "batch": Key("int", 1, "Mini-batch size B (drawn with replacement).", positive=True),
            "chains": Key("int", 0, "Independent SGD runs simulated beside the PDE and compared with "
                          "it at every save (0: none).", minimum=0),
            "chain_seed": Key("int", 1, "Seed of the SGD runs.", minimum=0),
        },
        "particles": {
            "count": Key("int", 0, "Number of SDE particles (0: none). Simulated beside the PDE, "
                         "compared with it at every save.", minimum=0),
            "seed": Key("int", 0, "Seed of the particle ensemble.", minimum=0),
            "dt": Key("float", None, "Euler-Maruyama step (default: the PDE step, at most 0.01).",
                      positive=True),
            "start": Key("floats", None, "Start all particles at this point (default: sample the "
                         "initial density)."),
            "until_absorbed": Key("bool", False, "With an absorbing set: keep simulating after t_end "
                                  "until every particle is absorbed (or max_time), for escape times."),
            "max_time": Key("float", 1e6, "Limit of until_absorbed.", positive=True),
            "winding_about": Key("floats", None, "2-D: count the signed turns of every particle path "
                                 "about this point (analysis/particle_winding; particle_winding_mean, "
                                 "particle_winding_rate = mean turns per unit time)."),
        },
    }
    fields = ("rho", "current", "phi", "j")

    def check_exact(self) -> None:
        """[exact] also takes the components current_<d> and j_<d> (compared with the saved
        component fields)."""
        comps = tuple(f"{n}_{d + 1}" for n in ("current", "j") for d in range(self.mesh.ndim))
        self.fields = FokkerPlanckModel.fields + comps
        try:
            super().check_exact()
        finally:
            del self.fields

    @classmethod
    def validate(cls, data):
        if data["solver"]["backend"] == "petsc":
            if data["time"]["stepper"] not in PETSC_STEPPERS:
                raise CaseError(f"backend petsc runs the steppers {', '.join(PETSC_STEPPERS)}; "
                                f"stepper {data['time']['stepper']!r} runs on the built-in backend",
                                key="solver.backend")
            import importlib.util

            if importlib.util.find_spec("petsc4py") is None:
                raise CaseError("petsc4py is not installed; install MPI and PETSc with "
                                "scripts/setup-petsc.sh (or use backend = \"builtin\")",
                                key="solver.backend")
        m = data["model"]
        if data["sgd"]["loss"] is not None:
            for k in ("potential", "drift"):
                if m[k] is not None:
                    raise CaseError("is computed from the data with [sgd]; leave it out", key=f"model.{k}")
            if data["particles"]["count"]:
                raise CaseError("with [sgd] the SGD runs are the particles (sgd.chains)", key="particles.count")
        elif m["potential"] is None and m["drift"] is None:
            raise CaseError("give a potential, a drift, or both", key="model.potential")
        time = data["time"]
        if time["stepper"] != "steady" and m["initial"] is None:
            raise CaseError("is required (the initial density)", key="model.initial")
        if time["stepper"] == "steady":
            return data
        given = sum(time.get(k) is not None for k in ("t_end", "steps", "dt"))
        if time["stepper"] == "explicit" and given == 1 and time["t_end"] is not None:
            return data  # automatic step, resolved with the operator
        data["time"] = resolve_time(time)
        return data

    # -- construction: everything run() would reject is rejected here -------------------------------
    def __init__(self, case: Any, comm: Any = None):
        super().__init__(case, comm)
        mesh, nd, m = self.mesh, self.mesh.ndim, case["model"]
        try:
            self.kinds = boundary_kinds(mesh)
        except ValueError as exc:
            raise case.error(str(exc), key="mesh.boundary") from None
        self.sgd = None
        if case["sgd.loss"] is not None:
            s = case["sgd"]
            if nd == 1:
                from .sgd import SGDProblem
                if isinstance(s["theta_star"], list):
                    raise case.error("one parameter: a number", key="sgd.theta_star")
                self.sgd = SGDProblem(s["loss"], s["samples"], s["theta_star"], s["noise"], s["seed"])
            elif nd == 2:
                from .sgd2d import SGDProblem2
                for k in ("theta_star", "feature_scales"):
                    if isinstance(s[k], list) and len(s[k]) != 2:
                        raise case.error("give one number or two", key=f"sgd.{k}")
                if np.any(np.asarray(s["feature_scales"], dtype=float) <= 0) or abs(s["feature_correlation"]) >= 1:
                    raise case.error("feature scales must be positive and |correlation| < 1",
                                     key="sgd.feature_scales")
                self.sgd = SGDProblem2(s["loss"], s["samples"], s["theta_star"], s["noise"], s["seed"],
                                       s["feature_scales"], s["feature_correlation"])
            else:
                raise case.error("SGD's diffusion is implemented for one or two parameters: a 1-D or 2-D mesh",
                                 key="sgd.loss")
        self.coefficients = self._coefficients(m)
        self.D_time = self.coefficients.diffusion.in_time
        self.absorbing = self.coefficients.absorbing
        self.op0 = self.operator(0.0)
        self.has_absorption = (self.absorbing is not None and bool(self.absorbing.any())) or any(
            k == ABSORBING for pair in self.kinds for k in pair)
        if m["mfpt_from"] is not None and len(m["mfpt_from"] if isinstance(m["mfpt_from"], list) else [0]) != nd:
            raise case.error(f"give a point with {nd} coordinates", key="model.mfpt_from")
        if m["kramers"] is not None and (nd != 1 or len(np.atleast_1d(m["kramers"])) != 2):
            raise case.error("Kramers' formula takes [x_min, x_saddle] on a 1-D mesh", key="model.kramers")
        if m["mfpt_from"] is not None and not self.has_absorption:
            raise case.error("needs an absorbing set or a dirichlet (absorbing) boundary",
                             key="model.mfpt_from")
        self.petsc = case["solver.backend"] == "petsc"
        if self.petsc and self.D_time:
            raise case.error("backend petsc needs a diffusion constant in time (D(t): use "
                             "backend = \"builtin\")", key="solver.backend")
        if self.petsc and case["time.stepper"] == "explicit" and self.op0.has_cross_terms:
            raise case.error("backend petsc runs the explicit stepper without cross terms (a diagonal "
                             "diffusion); use an implicit stepper or backend = \"builtin\"",
                             key="model.diffusion")
        wa = case["particles.winding_about"]
        if wa is not None and (nd != 2 or len(np.atleast_1d(wa)) != 2):
            raise case.error("winding numbers are counted about a point of a 2-D mesh", key="particles.winding_about")
        self.nonequilibrium = bool(m["nonequilibrium"])
        if self.nonequilibrium and (self.has_absorption or self.D_time):
            raise case.error("needs a steady state: no absorbing set or boundary and a diffusion constant "
                             "in time", key="model.nonequilibrium")
        self._resolve_time()
        self.want = self.saved_fields()
        if self.stepper == "steady":
            self.rho0 = None
            if case["model.initial"] is not None:  # not used by a steady solve: parsed
                case.expression("model.initial", coordinate_names("x", self.mesh.ndim))
            if self.absorbing is not None:
                raise case.error("a steady state with an absorbing set is zero; use a time stepper",
                                 key="time.stepper")
        else:
            self.rho0 = self.initial()
            self.schedule = self.save_schedule(self.t_end, self.steps)
            lr = case["sgd.lr"]
            if self.sgd is not None and case["sgd.chains"] and (
                    abs(self.dt / lr - round(self.dt / lr)) > 1e-9 * self.dt / lr or self.dt < lr * (1 - 1e-12)):
                raise case.error(f"with sgd.chains the PDE step dt = {self.dt:g} must be a whole number of "
                                 f"SGD steps lr = {lr:g}", key="time.dt")
            if self.D_time and self.t_end > 0.0:  # D(t) evaluated at both ends of time
                self.operator(self.t_end)

    def memory_counts(self):
        """The SDE particles, the SGD runs and the SGD data set: a few arrays of d or 1 per
        particle, run or sample."""
        c, d = self.case, self.mesh.ndim
        return {"particles.count": 8 * c["particles.count"] * (4 * d + 4),
                "sgd.chains": 8 * c["sgd.chains"] * 8,
                "sgd.samples": 8 * c["sgd.samples"] * 6}

    def _coefficients(self, m):
        """Potential, drift, diffusion and absorbing set from the case (or from [sgd])."""
        case, mesh = self.case, self.mesh
        names = coordinate_names("x", mesh.ndim)
        absorbing = absorbing_expr = None
        if m["absorbing"] is not None:
            absorbing_expr = case.expression("model.absorbing", names)
            absorbing = absorbing_expr(shape=mesh.shape, **coordinate_env("x", mesh.centres())) > 0
            if absorbing.all():
                raise case.error("every cell is absorbing", key="model.absorbing")
        if self.sgd is not None and mesh.ndim == 2:
            return Coefficients(mesh, Potential(self.sgd_field(self.sgd.f, mesh.centres())), None,
                                Diffusion(2, field=self.sgd_tensor()), absorbing, absorbing_expr, form="ito")
        if self.sgd is not None:
            lr, B, faces = case["sgd.lr"], case["sgd.batch"], mesh.faces[0]
            # the Ito equation written in the Fick form with the drift -D' (faces only)
            return Coefficients(mesh, Potential(self.sgd.f(mesh.axes[0])),
                                Drift([self.sgd.ito_drift(faces, lr, B)]),
                                Diffusion(1, faces=[self.sgd.diffusion(faces, lr, B)]), absorbing, absorbing_expr,
                                form="fick")
        potential = drift = None
        if m["potential"] is not None:
            potential = Potential.from_expression(case.expression("model.potential", names), mesh)
        try:
            if m["drift"] is not None:
                drift = Drift.from_expressions(
                    m["drift"], lambda e: case.expression("model.drift", names, text=e), mesh)
        except ValueError as exc:
            raise case.error(str(exc), key="model.drift") from None
        try:
            diffusion = Diffusion.parse(m["diffusion"], mesh.ndim,
                                        lambda e: case.expression("model.diffusion", names + ("t",), text=e))
        except ValueError as exc:
            raise case.error(str(exc), key="model.diffusion") from None
        return Coefficients(mesh, potential, drift, diffusion, absorbing, absorbing_expr, form=m["form"])

    @staticmethod
    def sgd_field(fn, coords):
        """fn of the points of a coordinate grid, on the grid's shape (trailing axes kept)."""
        shape = coords[0].shape
        P = np.stack([c.ravel() for c in coords], axis=1)
        v = fn(P)
        return v.reshape(shape + v.shape[1:])

    def sgd_tensor(self) -> TensorField:
        """SGD's D(theta) = lr Sigma(theta) / (2B) at the cell and face centres."""
        lr, B, mesh = self.case["sgd.lr"], self.case["sgd.batch"], self.mesh
        D = lambda P: self.sgd.diffusion(P, lr, B)  # noqa: E731
        cells = np.moveaxis(self.sgd_field(D, mesh.centres()), (-2, -1), (0, 1))
        faces = [np.moveaxis(self.sgd_field(D, face_coordinates(mesh, d)), (-2, -1), (0, 1))
                 for d in range(mesh.ndim)]
        return TensorField(cells, faces)

    def operator(self, t: float) -> FokkerPlanckOperator:
        """The finite-volume generator at time t."""
        try:
            return self.coefficients.operator(t)
        except ValueError as exc:
            raise self.case.error(str(exc), key="model.diffusion") from None

    def temperature(self) -> float:
        """T of phi and kl_to_steady: [model] temperature, else the scalar D, else 1."""
        T = self.case["model.temperature"]
        if T is None:
            T = self.D_scalar(0.0) or 1.0
        return float(T)

    def D_scalar(self, t: float) -> float | None:
        """The scalar D when the diffusion is isotropic and constant in space (else None)."""
        return self.coefficients.diffusion.scalar(self.mesh, t)

    def _resolve_time(self):
        t = dict(self.case["time"])
        self.stepper = t["stepper"]
        if self.stepper == "steady":
            self.steps, self.dt, self.t_end = 0, 0.0, 0.0
            return
        cfl = self.case["model.cfl"]
        if self.stepper == "explicit":
            if self.D_time:
                T = t["t_end"] if t.get("t_end") is not None else t["steps"] * t["dt"]
                safe = min(self.operator(s).max_stable_dt() for s in np.linspace(0.0, T, 21))
            else:
                safe = self.op0.max_stable_dt()
            if t.get("steps") is None and t.get("dt") is None:
                steps = int(np.ceil(t["t_end"] / (cfl * safe)))
                if t.get("outputs"):  # equally spaced saves fall on steps: round the count up
                    steps = -(-steps // t["outputs"]) * t["outputs"]
                t.update(steps=steps, dt=t["t_end"] / steps)
            elif t["dt"] > safe * (1 + 1e-12):
                raise self.case.error(f"dt = {t['dt']:.4g} exceeds the largest positivity-preserving "
                                      f"explicit step {safe:.4g}; leave dt out for an automatic step "
                                      "or use an implicit stepper", key="time.dt")
        self.steps, self.dt, self.t_end = int(t["steps"]), float(t["dt"]), float(t["t_end"])

    def initial(self) -> np.ndarray:
        mesh = self.mesh
        expr = self.case.expression("model.initial", coordinate_names("x", mesh.ndim))
        rho = np.asarray(expr(shape=mesh.shape, **coordinate_env("x", mesh.centres())), dtype=float).copy()
        if np.any(rho < 0):
            raise self.case.error("the initial density is negative somewhere", key="model.initial")
        if self.absorbing is not None:
            rho[self.absorbing] = 0.0
        mass = mesh.integrate(rho)
        if mass <= 0:
            raise self.case.error("the initial density has no mass (outside the absorbing set)",
                                  key="model.initial")
        if self.case["model.normalise"]:
            rho /= mass
        return rho

    def work_units(self) -> int:
        return max(self.steps, 1)

    def resume_state(self, result: Any) -> np.ndarray:
        """``pdenet run --resume``: the density at the last save, for the built-in one-step
        steppers without companions (their state is rho alone)."""
        why = ("the steady solve has no time steps" if self.stepper == "steady" else
               "PETSc keeps its own state" if self.petsc else
               "bdf2 needs the step before the last" if self.stepper == "bdf2" else
               "its SGD runs or particles are not saved" if self._companions() else
               "the file has no field rho" if "rho" not in result.fields else "")
        if why:
            raise self.case.error(f"this case cannot resume from its file: {why}", key="--resume")
        return np.asarray(result.fields["rho"][-1], dtype=float).reshape(np.shape(self.rho0))

    # -- running ------------------------------------------------------------
    def run(self, sink: Any, progress: Callable[[int], Any] = lambda k: None) -> dict[str, float]:
        op = self.op0
        sink.set_attrs({"stepper": self.stepper, "dt": self.dt, "steps": self.steps,
                        "gradient_drift": bool(op.is_gradient), "boundary_kinds": [list(k) for k in op.kinds]})
        last = Last()
        if self.nonequilibrium and self.stepper != "steady":
            self.rho_ss, _ = self._steady(None)
        if self.stepper == "steady":
            rho, summary = self._steady(sink)
            self.rho_ss = rho
            frame = Frame(0, 0.0, rho)
            for observe in self._observers(sink, last):
                observe(frame)
            progress(1)
        else:
            companions, system = self._companions(), self._system(sink)
            try:
                march(system, self.rho0, self.schedule,
                      [require_finite("density"), *self._observers(sink, last, *companions)], progress)
                summary = system.summary()
            finally:
                system.destroy()
            summary.update(self._analysis(sink, companions))
        if self.nonequilibrium:
            summary.update(analysis.nonequilibrium(sink, self.op0, self.coefficients, self.rho_ss,
                                                   self.temperature(), write_fields=self.stepper != "steady"))
            if self.sgd is not None:
                summary.update(analysis.sgd_mode(sink, self.sgd, self.mesh, self.rho_ss, self.case["sgd.lr"],
                                                 self.case["sgd.batch"]))
        summary.update({k: last.diagnostics[k] for k in SUMMARY if k in last.diagnostics})
        summary = {k: float(v) for k, v in summary.items()}
        sink.set_attrs(summary)
        return summary

    def _observers(self, sink, last, *companions):
        """Diagnostics and fields, the error against [exact], the companions (SGD runs, particles),
        the summary's last values and the sink."""
        obs = [DensityDiagnostics(self.op0, self.D_scalar, self.has_absorption, self.want,
                                  self.operator if self.D_time else None)]
        if self.nonequilibrium:
            obs.append(SteadyComparison(self.op0, self.rho_ss, self.temperature(), self.want,
                                        fields=self.stepper == "steady"))
        exact = self.case.get("exact") or {}
        if "rho" in exact:
            obs.append(lambda f: f.state is None or f.diagnostics.update(self.exact_errors("rho", f.t, f.state)))
        for name in ("phi", "current_1", "current_2", "current_3", "j_1", "j_2", "j_3"):
            if name in exact:
                obs.append(lambda f, name=name: name not in f.fields or f.diagnostics.update(
                    self.exact_errors(name, f.t, f.fields[name])))
        return [*obs, *companions, last, with_state(SinkWriter(sink))]

    def _steady(self, sink):
        """The steady state by a direct (built-in) or Krylov (PETSc) solve, and its summary."""
        c, op, mesh = self.case, self.op0, self.mesh
        A, w, summary = op.matrix(), np.full(mesh.size, mesh.cell_volume), {}
        if self.petsc:
            pb = self._petsc_module()
            # an iterative solve of a density spanning many decades stagnates near 1e-11:
            # krylov_tol, but not below 1e-10 (-ksp_rtol in petsc_options overrides)
            rho, resid, info = pb.steady_state(A, w, comm=self.comm, options=c["solver.petsc_options"],
                                               rtol=max(c["solver.krylov_tol"], 1e-10))
            summary["krylov_iterations"] = info["iterations"]
            if sink is not None:
                sink.set_attrs({"petsc_solver": f"{info['ksp']}/{info['pc']}", "petsc_ranks": self._ranks()})
        else:
            rho, resid = steady_state(A, w, pivot=op.has_cross_terms)
        rho = rho.reshape(mesh.cells)
        summary["steady_residual"] = resid
        if op.is_gradient:
            summary["steady_gibbs_max_rel_error"] = float(np.abs(rho - op.gibbs()).max() / rho.max())
        return rho, summary

    def _system(self, sink):
        """The fixed-step system of the case's stepper and backend."""
        c, op, dt = self.case, self.op0, self.dt
        if self.stepper == "explicit" and self.petsc:
            self._petsc_module()
            sink.set_attrs({"petsc_solver": "dmda/explicit", "petsc_ranks": self._ranks()})
            return DmdaExplicitSystem(op, dt, self.rho0, self.comm)
        if self.stepper == "explicit":
            return ExplicitSystem(op, dt, self.operator if self.D_time else None)
        if self.petsc:
            s = PetscLinearSystem(self._petsc_module(), self.stepper, op.matrix(), dt, self.rho0, comm=self.comm,
                                  options=c["solver.petsc_options"], rtol=c["solver.krylov_tol"])
            sink.set_attrs({"petsc_solver": s.stepper.ksp_description(), "petsc_ts": s.stepper.ts_description(),
                            "petsc_ranks": self._ranks()})
            return s
        matrix = (lambda t: self.operator(t).matrix()) if self.D_time else op.matrix()
        return ImplicitSystem(self.stepper, matrix, dt, pivot=op.has_cross_terms)

    def _companions(self):
        """Observers simulating beside the PDE: the SGD runs ([sgd] chains), the particles."""
        c, mesh, co = self.case, self.mesh, self.coefficients
        out = []
        if self.sgd is not None and c["sgd.chains"]:
            seed = c["sgd.chain_seed"]
            X0 = ParticleEnsemble(mesh, self.kinds, None, None, seed=seed).sample(self.rho0, c["sgd.chains"])
            out.append(SGDChains(self.sgd, c["sgd.lr"], c["sgd.batch"], X0[:, 0].copy() if mesh.ndim == 1 else X0,
                                 np.random.default_rng(seed), mesh))
        count = c["particles.count"]
        if count:
            absorbed = co.absorbed if co.absorbing_expr is not None else None
            ens = ParticleEnsemble(mesh, self.kinds, co.velocity, co.noise, absorbed, seed=c["particles.seed"])
            if c["particles.winding_about"] is not None:
                ens.winding_centre = np.asarray(c["particles.winding_about"], dtype=float)
            start = c["particles.start"]
            ens.start(ens.sample(self.rho0, count) if start is None else
                      np.tile(np.atleast_1d(np.asarray(start, dtype=float)), (count, 1)))
            out.append(Particles(ens, c["particles.dt"] or min(self.dt, 0.01)))
        return out

    def _analysis(self, sink, companions):
        """After the march: first-passage times, Kramers' time, particle escape, the SGD runs."""
        c, mesh, summary = self.case, self.mesh, {}
        if self.has_absorption:
            summary.update(analysis.first_passage(sink, self.op0, self.absorbing, self.rho0, c["model.mfpt_from"]))
        kr, f, D = c["model.kramers"], self.coefficients.potential, self.D_scalar(0.0)
        if kr is not None and f is not None and f.expr is not None and mesh.ndim == 1 and D:
            summary["kramers_time"] = fpd.kramers_1d(f.at, kr[0], kr[1], D)
        for comp in companions:
            if isinstance(comp, Particles):
                summary.update(analysis.particle_escape(
                    sink, comp.ensemble, comp.dt, self.t_end, self.has_absorption,
                    c["particles.until_absorbed"], c["particles.max_time"]))
            else:
                analysis.sgd_runs(sink, comp.histogram, comp.theta,
                                  self.coefficients.diffusion.faces[0] if mesh.ndim == 1 else None,
                                  self.coefficients.potential.values)
        return summary

    def _petsc_module(self):
        from solvers import petsc_backend

        try:
            petsc_backend.petsc()
        except petsc_backend.PetscUnavailable as exc:
            raise self.case.error(str(exc), key="solver.backend") from None
        return petsc_backend

    def _ranks(self):
        return 1 if self.comm is None else int(self.comm.Get_size())
