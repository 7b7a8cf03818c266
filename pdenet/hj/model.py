"""Case-file model ``hamilton-jacobi``: u_t + H(x, grad u) = nu Lap u, u(x, 0) = f(x)
(PRODUCT.md 1.3; thesis ch. 4). With the default H = |p|^2/2 the solution at t = gamma is the
local entropy of the loss f at scope gamma; the heat equation and the inviscid equation can be
solved beside it (``compare``), particle algorithms run on the same landscape (``[particles]``),
and the Entropy-SGD homogenisation is checked against grad u (``[homogenisation]``).
"""
import numpy as np

from solvers.march import SaveSchedule, march

from ..case import REQUIRED, THREADS_KEY, Key, resolve_time
from ..errors import CaseError
from ..expr import coordinate_env, coordinate_names
from ..io.sink import SinkWriter
from . import exact as hjexact
from . import particles as P
from .petsc import PETSC_STEPPERS
from ..landscape import Landscape, interpolate, second_difference_max
from .common import OUTPUTS_ALIAS, TIME_SCHEMA, check_mesh, outputs_alias, resolve_nu
from .observers import ExactErrors, LastDiagnostics, Semiconcavity, SolutionFields, StateField
from .scheme import STEPPERS, HJScheme, HJSystem
from ..models.base import Model

NAMED_EXACT = ("cole-hopf", "hopf-lax", "heat")
COMPARE = ("inviscid", "heat")


class HamiltonJacobiModel(Model):
    """Viscous/inviscid Hamilton-Jacobi equation u_t + H(x, grad u) = nu Lap u (local entropy, PRODUCT.md 1.3)."""

    name = "hamilton-jacobi"
    unused_keys = ("time.checkpoint_every", "solver.newton_tol", "solver.newton_maxiter")
    named_exact = NAMED_EXACT
    fields = ("u", "grad_u", "u_inviscid", "v_heat")
    coordinate_prefix = "x"
    schema = {
        "time": {**TIME_SCHEMA,
                 "allow_unstable": Key("bool", False, "Run with a given time.dt (or steps) above the "
                                       "stability limit of the explicit part of the stepper (CFL 1 "
                                       "and, for euler/ssp-rk3, the explicit diffusion bound); "
                                       "otherwise that is an error before the run (at t = 0) and "
                                       "stops the run, keeping its results, if it happens later (the "
                                       "built-in backend checks every step).")},
        "solver": {"threads": THREADS_KEY},
        "model": {
            "f": Key("expr", REQUIRED, "Initial data / loss f(x) (x in 1-D, x1, x2, x3 otherwise)."),
            "nu": Key("float", None, "Diffusion coefficient nu >= 0 (give nu or beta)."),
            "beta": Key("float", None, "Inverse temperature: nu = 1/(2 beta) (thesis: beta^-1/2)."),
            "hamiltonian": Key("str", "quadratic", "quadratic: H = |p|^2/2; general: the expression H.",
                               choices=["quadratic", "general"]),
            "H": Key("expr", None, "general: H(x, p) in the coordinates and p (1-D) or p1, p2, p3."),
            "dissipation": Key("exprs", None, "general: bound(s) of |dH/dp_d| (one expression for all "
                               "dimensions or one per dimension, of x and p), evaluated at both one-sided "
                               "gradients; default: central differences of H in p."),
            "flux": Key("str", "godunov", "Numerical Hamiltonian (general H always uses llf).",
                        choices=["godunov", "llf"]),
            "order": Key("int", 5, "1: first-order one-sided differences (2nd-order diffusion); 5: WENO5 "
                         "(4th-order diffusion).", choices=[1, 5]),
            "equation": Key("str", "hj", "The equation of the field u: hj (u_t + H = nu Lap u) or heat "
                            "(u_t = nu Lap u, for heat-equation smoothing alone).", choices=["hj", "heat"]),
            "compare": Key("strs", [], "Also solve, on the same mesh and f: inviscid (nu = 0, field "
                           "u_inviscid) and/or heat (v_t = nu Lap v, field v_heat).", choices=list(COMPARE)),
            "outputs": OUTPUTS_ALIAS,
        },
        "exact": {
            "*": Key("expr", REQUIRED, "hamilton-jacobi: an expression of the coordinates and t, or "
                     "\"cole-hopf\" (1-D quadrature, nu > 0), \"hopf-lax\" (1-D, nu = 0) or \"heat\" "
                     "(1-D Gaussian smoothing of f)."),
        },
        "particles": {
            "algorithms": Key("strs", [], "Particle algorithms to run on f.", choices=list(P.ALGORITHMS)),
            "runs": Key("int", 200, "Independent runs (vectorised).", positive=True),
            "steps": Key("int", 200, "Outer steps.", positive=True),
            "x0": Key("floats", 0.0, "Start point (one number per dimension, or one for all)."),
            "spread": Key("float", 0.0, "Standard deviation of a Gaussian spread of the start points.",
                          minimum=0.0),
            "eta": Key("float", 0.1, "Outer step size eta.", positive=True),
            "gamma": Key("float", None, "Scope gamma (default: t_end).", positive=True),
            "nu": Key("float", None, "Temperature as nu (default: the model's nu).", minimum=0.0),
            "inner": Key("int", 20, "Entropy-SGD inner steps L / HEAT samples.", positive=True),
            "inner_hj": Key("int", 5, "HJ algorithm inner steps (4.42).", positive=True),
            "eta_y": Key("float", 0.1, "Inner step size eta_y.", positive=True),
            "average": Key("float", 0.75, "Entropy-SGD exponential averaging <y> <- a <y> + (1-a) y.",
                           minimum=0.0),
            "scoping": Key("float", 0.0, "Entropy-SGD scoping: gamma <- gamma/(1 + scoping) per outer step.",
                           minimum=0.0),
            "replicas": Key("int", 4, "Elastic-SGD replicas per run.", positive=True),
            "record_every": Key("int", 1, "Record the path every this many outer steps.", positive=True),
            "seed": Key("int", 0, "Seed.", minimum=0),
        },
        "homogenisation": {
            "points": Key("floats", None, "Points x (1-D: a list of numbers) where the averaged Entropy-SGD "
                          "direction is compared with grad u(x, t_end)."),
            "runs": Key("int", 200, "Independent inner loops per point.", positive=True),
            "inner": Key("int", 2000, "Inner Langevin steps.", positive=True),
            "burn": Key("int", 200, "Steps discarded before averaging.", minimum=0),
            "eta_y": Key("float", 0.005, "Inner step size.", positive=True),
            "seed": Key("int", 0, "Seed.", minimum=0),
        },
    }

    @classmethod
    def validate(cls, data):
        m = data["model"]
        if data["solver"]["backend"] == "petsc":
            stepper = data["time"]["stepper"]
            if stepper not in PETSC_STEPPERS:
                raise CaseError(f"backend petsc runs the steppers {', '.join(PETSC_STEPPERS)}; stepper "
                                f"{stepper!r} runs on the built-in backend", key="solver.backend")
            if m["hamiltonian"] != "quadratic":
                raise CaseError("backend petsc runs the quadratic Hamiltonian; hamiltonian = 'general' runs "
                                "on the built-in backend", key="solver.backend")
            import importlib.util

            if importlib.util.find_spec("petsc4py") is None:
                raise CaseError("petsc4py is not installed; install MPI and PETSc with "
                                "scripts/setup-petsc.sh (or use backend = \"builtin\")", key="solver.backend")
        data["model"]["nu_value"] = resolve_nu(m)
        outputs_alias(data)
        check_mesh(data)
        t = data["time"]
        if t["t_end"] is None:
            if t.get("steps") and t.get("dt"):
                t["t_end"] = t["steps"] * t["dt"]
            else:
                raise CaseError("is required (the scope gamma of the local entropy)", key="time.t_end")
        if t.get("steps") is not None or t.get("dt") is not None:
            data["time"] = resolve_time(t)
        if m["hamiltonian"] == "general" and m["H"] is None:
            raise CaseError("hamiltonian = 'general' needs the expression H", key="model.H")
        h = data["homogenisation"]
        if h["points"] is not None and h["burn"] >= h["inner"]:
            raise CaseError("burn must be smaller than inner", key="homogenisation.burn")
        return data

    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        self.nu = case["model.nu_value"]
        self.f = Landscape(case, "model.f", self.mesh.ndim)
        self.f0 = self.f.on_mesh(self.mesh)
        self.t_end = case["time.t_end"]
        self.compare = list(dict.fromkeys(case["model.compare"]))
        self.dt = case.get("time.dt")
        # saves: time.outputs equally spaced; with a fixed step (time.dt/steps) also time.save_every
        # (both stepped to each save time by HJSystem.advance_to)
        steps = case["time.steps"] if self.dt and case.get("time.save_every") is not None else None
        self.schedule = SaveSchedule(self.save_schedule(self.t_end, steps=steps).times)
        try:
            self.heat = case["model.equation"] == "heat"
            self.scheme = self._scheme(self.nu, a=0.0 if self.heat else 1.0)
            # the comparison solves: name -> (field, scheme)
            self.compare_schemes = {name: ("u_inviscid", self._scheme(0.0)) if name == "inviscid"
                                    else ("v_heat", self._scheme(self.nu, a=0.0)) for name in self.compare}
        except ValueError as exc:
            raise case.error(str(exc), key="mesh.cells") from None
        self._check_stable_dt()
        self._check_exact()
        self.want = set(self.saved_fields())
        x0 = np.atleast_1d(np.asarray(case["particles.x0"], float))
        if x0.size not in (1, self.mesh.ndim):
            raise case.error(f"has {x0.size} entries for a {self.mesh.ndim}-D mesh", key="particles.x0")
        pts = case["homogenisation.points"]
        if pts is not None and self.mesh.ndim != 1:
            raise case.error("the homogenisation check takes 1-D points (a list of numbers); "
                             "the mesh is not 1-D", key="homogenisation.points")

    def _explicit_dt_checked(self):
        """A given step of a stepper with an explicit hyperbolic part (euler, ssp-rk3, and the
        explicit half of imex / imex-euler) is checked against its stability limit."""
        c = self.case
        return bool(self.dt) and not c["time.allow_unstable"] and c["time.stepper"] in STEPPERS

    def _check_stable_dt(self):
        """A given step (time.dt, or t_end/steps) of an explicit stepper must not exceed the
        scheme's stability limit at t = 0: the CFL rule of :meth:`HJScheme.max_dt` with cfl = 1
        (max|dH/dp_d|/h_d at f, plus the explicit diffusion bound), for the solve and each
        comparison solve. A step above it runs to the end with a wrong answer (no blow-up need
        happen), so it is an error unless ``time.allow_unstable = true``."""
        c = self.case
        if not self._explicit_dt_checked():
            return
        limit = np.inf
        for scheme in [self.scheme] + [s for _, s in self.compare_schemes.values()]:
            limit = min(limit, scheme.max_dt(self.f0.copy(), 0.0) / scheme.cfl)
        if self.dt > limit * (1 + 1e-9):
            key = "time.dt" if "dt" in (c.raw.get("time") or {}) else "time.steps"
            steps = int(np.ceil(self.t_end / limit)) if np.isfinite(self.t_end / limit) else None
            more = f" (time.steps >= {steps})" if steps else ""
            raise c.error(f"dt = {self.dt:.6g} is {self.dt / limit:.3g} times the stability limit "
                          f"{limit:.6g} of the {c['time.stepper']} stepper's explicit part at t = 0; give a "
                          f"smaller step{more}, leave time.dt and time.steps out for the automatic step, "
                          f"or set time.allow_unstable = true", key=key)

    def _scheme(self, nu, a=1.0):
        c, mesh = self.case, self.mesh
        general = dissipation = None
        flux = c["model.flux"]
        if c["model.hamiltonian"] == "general" and a != 0.0:
            general, dissipation = self._general()
            flux = "llf"
        stepper = c["time.stepper"]
        if stepper.startswith("imex") and nu == 0.0:
            stepper = "ssp-rk3"
        return HJScheme(mesh, nu=nu, order=c["model.order"], flux=flux, a=a, general=general,
                        dissipation=dissipation, cfl=c["time.cfl"], stepper=stepper)

    def _general(self):
        c, mesh = self.case, self.mesh
        xn = coordinate_names("x", mesh.ndim)
        pn = coordinate_names("p", mesh.ndim)
        H = c.expression("model.H", xn + pn)
        xenv = {k: v.ravel() for k, v in coordinate_env("x", mesh.centres()).items()}

        def penv(P):
            return coordinate_env("p", tuple(P[d] for d in range(mesh.ndim)))

        def general(P):
            return H(shape=(mesh.size,), **xenv, **penv(P))

        dissipation = None
        texts = c["model.dissipation"]
        if texts is not None:
            if len(texts) not in (1, mesh.ndim):
                raise c.error(f"has {len(texts)} expressions; give 1 or {mesh.ndim}", key="model.dissipation")
            exprs = [c.expression("model.dissipation", xn + pn, text=t) for t in texts]

            def dissipation(P):
                vals = [e(shape=(mesh.size,), **xenv, **penv(P)) for e in exprs]
                return np.stack(vals if len(vals) == mesh.ndim else vals * mesh.ndim)
        # evaluated on the mesh (at p = 0) while the model is constructed: validation rejects
        # an expression that run would
        P0 = np.zeros((mesh.ndim, mesh.size))
        general(P0)
        if dissipation is not None:
            dissipation(P0)
        return general, dissipation

    def _check_exact(self):
        for field, value in (self.case.get("exact") or {}).items():
            if value in NAMED_EXACT:
                key = f"exact.{field}"
                if self.mesh.ndim != 1:
                    raise self.case.error(f"{value!r} is implemented in 1-D; give an expression", key=key)
                if value == "cole-hopf" and self.nu == 0.0:
                    raise self.case.error("cole-hopf needs nu > 0; use \"hopf-lax\" for nu = 0", key=key)
                if value == "hopf-lax" and self.nu > 0.0 and field == "u":
                    raise self.case.error("hopf-lax is the nu = 0 solution; use \"cole-hopf\"", key=key)

    def exact_fields(self, t):
        exact = self.case.get("exact") or {}
        out = {}
        plain = {k: v for k, v in exact.items() if v not in NAMED_EXACT}
        if plain:
            names = coordinate_names("x", self.mesh.ndim) + ("t",)
            env = coordinate_env("x", self.mesh.centres())
            for field in plain:
                out[field] = self.case.expression(f"exact.{field}", names)(shape=self.mesh.shape,
                                                                         t=np.float64(t), **env)
        for field, kind in exact.items():
            if kind in NAMED_EXACT:
                out[field] = self.exact_solution(kind, t)
        return out

    def exact_solution(self, kind, t, nu=None):
        """The named 1-D exact solution on the mesh centres at time t."""
        mesh = self.mesh
        x = mesh.axes[0]
        nu = self.nu if nu is None else nu
        period = (mesh.lower[0], mesh.upper[0]) if mesh.boundary[0][0].kind == "periodic" else None
        f = lambda y: self.f((y,))  # noqa: E731
        if kind == "cole-hopf":
            return hjexact.cole_hopf(f, x, t, nu, period=period)
        if kind == "heat":
            return hjexact.heat(f, x, t, nu, period=period)
        return hjexact.hopf_lax(f, x, t, (mesh.lower[0], mesh.upper[0]), period=period)

    # -- running ------------------------------------------------------------
    def work_units(self):
        return self.schedule.work * (1 + len(self.compare))

    def _march(self, scheme, observers, progress):
        """March u from f through the save schedule with ``scheme`` (built-in or PETSc);
        returns (u at t_end, steps)."""
        if self.case["solver.backend"] != "petsc":
            system = HJSystem(scheme, self.dt, check_stability=self._explicit_dt_checked())
            return march(system, self.f0.copy(), self.schedule, observers, progress), system.steps
        from solvers import petsc_backend

        from .petsc import PetscHJ

        c = self.case
        try:
            petsc_backend.petsc()
            system = PetscHJ(scheme, comm=self.comm, options=c["solver.petsc_options"],
                             rtol=c["solver.krylov_tol"], dt=self.dt)
        except petsc_backend.PetscUnavailable as exc:
            raise c.error(str(exc), key="solver.backend") from None
        except ValueError as exc:
            raise c.error(str(exc), key="solver.petsc_options" if "option" in str(exc) else "mesh.cells") from None
        self.petsc_info = {"petsc_solver": system.description(), "petsc_ranks": system.ranks()}
        try:
            system.set_state(self.f0)
            u = march(system, self.f0.copy(), self.schedule, observers, progress)
            scheme.evaluations += system.evaluations
            self.petsc_info["krylov_iterations"] = system.ts.linear_iterations()
        finally:
            system.destroy()
        return u, system.steps

    def run(self, sink, progress=lambda k: None):
        want = self.want
        exact = self.case.get("exact") or {}
        C = second_difference_max(self.f0, self.mesh)
        sink.set_attrs({"nu": self.nu, "order": self.case["model.order"], "flux": self.scheme.flux,
                        "stepper": self.scheme.stepper, "hamiltonian": self.case["model.hamiltonian"],
                        "semiconcavity_C": C})
        errors = ExactErrors("u", lambda t: self.exact_fields(t)["u"], self.exact_errors) if "u" in exact else None
        final = LastDiagnostics()
        observers = [SolutionFields(self.scheme.gradient, want), Semiconcavity(self.mesh, C, self.heat),
                     *([errors] if errors else []), SinkWriter(sink), final]
        u, steps = self._march(self.scheme, observers, progress)
        self.u_final = u
        if getattr(self, "petsc_info", None):
            sink.set_attrs(dict(self.petsc_info))
        if errors:
            sink.write("analysis", "u_exact_final", errors.last,
                       {"meaning": f"[exact] u = {exact['u']} at t_end (for plots)"})
        summary = {"steps": steps, "rhs_evaluations": self.scheme.evaluations,
                   **{f"final_{k}": v for k, v in final.values.items()}}

        nsave = len(self.schedule.times)
        for name, (field, scheme) in self.compare_schemes.items():
            _, summary[f"steps_{name}"] = self._march(
                scheme, [StateField(field, want), SinkWriter(sink, put=True, n_saved=nsave)], progress)

        if self.case["particles.algorithms"]:
            summary.update(self._particles(sink))
        if self.case["homogenisation.points"] is not None:
            summary.update(self._homogenisation(sink, u))
        sink.set_attrs({k: v for k, v in summary.items() if np.ndim(v) == 0})
        return summary

    def memory_counts(self):
        """The particle algorithms: each run's path (every outer step) and a few work arrays per
        run (replicas, inner samples)."""
        c, d = self.case, self.mesh.ndim
        if not c["particles.algorithms"]:
            return {}
        runs, steps = c["particles.runs"], c["particles.steps"]
        work = max(c["particles.replicas"], c["particles.inner"], c["particles.inner_hj"]) + 4
        return {"particles.runs": 8 * runs * ((steps + 1) * (d + 1) + d * work)}

    # -- particles ----------------------------------------------------------
    def particle_options(self):
        c = self.case
        opts = dict(c["particles"])
        opts["gamma"] = opts["gamma"] if opts["gamma"] is not None else self.t_end
        opts["nu"] = opts["nu"] if opts["nu"] is not None else self.nu
        return opts

    def _particles(self, sink):
        opts = self.particle_options()
        out = {}
        for i, name in enumerate(dict.fromkeys(opts["algorithms"])):
            rng = np.random.default_rng([opts["seed"], i])
            x0 = P.start_points(rng, opts["runs"], opts["x0"], opts["spread"], self.mesh.ndim)
            x, path = P.run_algorithm(name, self.f.grad, x0, opts, rng)
            loss = self.f(path)  # (runs, records)
            key = name.replace("-", "_")
            sink.write("analysis", f"particles_{key}_path", path,
                       {"meaning": f"{name}: x per run and recorded outer step (runs, records, ndim)"})
            sink.write("analysis", f"particles_{key}_loss", loss.mean(axis=0),
                       {"meaning": "mean f(x) over runs per recorded step"})
            out[f"particles_{key}_final_loss"] = float(loss[:, -1].mean())
        return out

    def _homogenisation(self, sink, u):
        h = self.case["homogenisation"]
        d = self.mesh.ndim
        pts = np.asarray(h["points"], float).reshape(-1, d)
        rng = np.random.default_rng(h["seed"])
        mean, se = P.entropy_gradient(self.f.grad, pts, self.t_end, self.nu, rng, runs=h["runs"],
                                      inner=h["inner"], burn=h["burn"], eta_y=h["eta_y"])
        grad = self.scheme.gradient(u)
        pde = np.stack([interpolate(grad[k], self.mesh, pts) for k in range(d)], axis=-1)
        sink.write("analysis", "homogenisation_points", pts)
        sink.write("analysis", "homogenisation_entropy_sgd", mean,
                   {"meaning": "mean over runs of (x - <y>)/gamma after the Entropy-SGD inner loop"})
        sink.write("analysis", "homogenisation_stderr", se)
        sink.write("analysis", "homogenisation_grad_u", pde, {"meaning": "grad u(x, gamma) of the PDE"})
        z = np.abs(mean - pde) / np.maximum(se, 1e-300)
        return {"homogenisation_max_z": float(z.max())}
