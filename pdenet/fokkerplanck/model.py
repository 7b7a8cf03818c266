"""Case-file model ``fokker-planck``: rho_t = div(rho grad f) - div(b rho) + div(D grad rho).

Finite volumes with Scharfetter-Gummel fluxes (:mod:`pdenet.fokkerplanck.fv`), explicit
(numba, automatic stable step), implicit Euler, BDF2 and Crank-Nicolson (sparse LU,
:mod:`solvers.linear`) or a direct steady-state solve; diagnostics per save, first-passage
times with an absorbing set, and an SDE particle ensemble of the same drift and diffusion.
"""
import numpy as np
from scipy.interpolate import RegularGridInterpolator

from solvers.linear import LinearStepper, steady_state

from ..case import Key, resolve_time
from ..errors import CaseError
from ..expr import coordinate_env, coordinate_names
from . import diagnostics as fpd
from .fv import ABSORBING, FokkerPlanckOperator, face_coordinates
from .particles import ParticleEnsemble
from ..models.base import Model

STEPPERS = ("explicit", "beuler", "bdf2", "cn", "steady")
#: steppers that [solver] backend = "petsc" runs (solvers.petsc_backend; explicit on a DMDA,
#: pdenet.fokkerplanck.dmda)
PETSC_STEPPERS = STEPPERS


class FokkerPlanckModel(Model):
    """Fokker-Planck equation rho_t = div(rho grad f) - div(b rho) + div(D grad rho) (PRODUCT.md 1.2)."""

    name = "fokker-planck"
    unused_keys = ("time.checkpoint_every", "solver.newton_tol", "solver.newton_maxiter")
    coordinate_prefix = "x"
    schema = {
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
                             "tensor, 2-D/3-D)."),
            "initial": Key("expr", None, "rho(x, 0) (normalised to mass 1 unless "
                           "normalise = false). Required except for stepper = steady."),
            "normalise": Key("bool", True, "Scale the initial density to mass 1."),
            "absorbing": Key("expr", None, "Absorbing set: cells whose centre makes this expression "
                             "positive hold rho = 0 (mass entering them is lost)."),
            "mfpt_from": Key("floats", None, "A point: report the mean first-passage time to the "
                             "absorbing set (boundaries or set) from there (attribute mfpt_at_point)."),
            "kramers": Key("floats", None, "[x_min, x_saddle] of a 1-D potential: report Kramers' "
                           "time 2 pi/sqrt(f''(x_min)|f''(x_s)|) exp((f(x_s)-f(x_min))/D) beside the MFPT."),
            "cfl": Key("float", 0.9, "explicit: fraction of the largest positivity-preserving step "
                       "1/max|A_ii| used when dt is not given (or the check on a given dt).",
                       positive=True),
        },
        "sgd": {
            "loss": Key("str", None, "SGD's own diffusion for a one-parameter model (1-D mesh = the "
                        "parameter theta): linear (least squares) or logistic. Replaces potential, "
                        "drift and diffusion by f(theta) = mean loss, D = lr Sigma(theta)/(2 batch) and "
                        "the Ito drift -D'.", choices=["linear", "logistic"]),
            "samples": Key("int", 200, "Data set size N (x_k standard normal, seeded).", positive=True),
            "theta_star": Key("float", 1.0, "Parameter generating the data."),
            "noise": Key("float", 0.5, "linear: standard deviation of the label noise.", minimum=0.0),
            "seed": Key("int", 0, "Seed of the data set."),
            "lr": Key("float", 0.1, "SGD learning rate (time t = steps * lr).", positive=True),
            "batch": Key("int", 1, "Mini-batch size B (drawn with replacement).", positive=True),
            "chains": Key("int", 0, "Independent SGD runs simulated beside the PDE and compared with "
                          "it at every save (0: none).", minimum=0),
            "chain_seed": Key("int", 1, "Seed of the SGD runs."),
        },
        "particles": {
            "count": Key("int", 0, "Number of SDE particles (0: none). Simulated beside the PDE, "
                         "compared with it at every save.", minimum=0),
            "seed": Key("int", 0, "Seed of the particle ensemble."),
            "dt": Key("float", None, "Euler-Maruyama step (default: the PDE step, at most 0.01).",
                      positive=True),
            "start": Key("floats", None, "Start all particles at this point (default: sample the "
                         "initial density)."),
            "until_absorbed": Key("bool", False, "With an absorbing set: keep simulating after t_end "
                                  "until every particle is absorbed (or max_time), for escape times."),
            "max_time": Key("float", 1e6, "Limit of until_absorbed.", positive=True),
        },
    }
    fields = ("rho", "current")

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

    # -- construction -------------------------------------------------------
    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        mesh, nd = self.mesh, self.mesh.ndim
        self.names = coordinate_names("x", nd)
        self.env = coordinate_env("x", mesh.centres())
        m = case["model"]
        self.f_expr = case.expression("model.potential", self.names) if m["potential"] is not None else None
        self.b_exprs = None
        if m["drift"] is not None:
            if len(m["drift"]) != nd:
                raise case.error(f"has {len(m['drift'])} components, the mesh has {nd} dimensions",
                                 key="model.drift")
            self.b_exprs = [case.expression("model.drift", self.names, text=t) for t in m["drift"]]
        self._parse_diffusion(m["diffusion"])
        self.sgd = self.chains = None
        if case["sgd.loss"] is not None:
            if nd != 1:
                raise case.error("SGD's diffusion is implemented for one parameter: a 1-D mesh", key="sgd.loss")
            from .sgd import SGDProblem
            s = case["sgd"]
            self.sgd = SGDProblem(s["loss"], s["samples"], s["theta_star"], s["noise"], s["seed"])
            self.D_const = self.D_tensor = None
            self.D_exprs, self.D_time, self.D_space = None, False, True
        self.absorbing_expr = None
        absorbing = None
        if m["absorbing"] is not None:
            self.absorbing_expr = case.expression("model.absorbing", self.names)
            absorbing = self.absorbing_expr(shape=mesh.shape, **self.env) > 0
            if absorbing.all():
                raise case.error("every cell is absorbing", key="model.absorbing")
        self.absorbing = absorbing
        try:
            self.op0 = self.operator(0.0)
        except CaseError as exc:
            raise exc.at(source=case.source) from None
        self.has_absorption = (absorbing is not None and bool(absorbing.any())) or any(
            k == ABSORBING for pair in self.op0.kinds for k in pair)
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
        self._resolve_time()
        # checked and evaluated here, not first in run, so that validation rejects what run would
        if self.stepper == "steady" and absorbing is not None:
            raise case.error("a steady state with an absorbing set is zero; use a time stepper",
                             key="time.stepper")
        if self.stepper != "steady" and self.sgd is not None and case["sgd.chains"]:
            lr = case["sgd.lr"]
            if abs(self.dt / lr - round(self.dt / lr)) > 1e-9 * self.dt / lr or self.dt < lr * (1 - 1e-12):
                raise case.error(f"with sgd.chains the PDE step dt = {self.dt:g} must be a whole number of "
                                 f"SGD steps lr = {lr:g}", key="time.dt")
        if m["initial"] is not None:
            if self.stepper == "steady":
                case.expression("model.initial", self.names)  # not used by a steady solve: parsed
            else:
                self.initial()
        if self.D_time and self.t_end > 0.0:
            self.diffusion_at(self.t_end)

    def _parse_diffusion(self, D):
        c, nd = self.case, self.mesh.ndim
        names = self.names + ("t",)
        self.D_tensor, self.D_exprs, self.D_const = None, None, None
        key = "model.diffusion"
        if isinstance(D, bool):
            raise c.error(f"expected a number, expression or list, got {D!r}", key=key)
        if isinstance(D, (int, float)):
            if D <= 0:
                raise c.error(f"must be positive, got {D!r}", key=key)
            self.D_const = np.full(nd, float(D))
        elif isinstance(D, str):
            self.D_exprs = [c.expression(key, names, text=D)] * nd
        elif isinstance(D, list) and D and all(isinstance(r, list) for r in D):
            if nd == 1 or len(D) != nd or any(len(r) != nd for r in D) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for r in D for v in r):
                raise c.error(f"a tensor is an {nd} x {nd} list of lists of numbers (2-D/3-D meshes)",
                              key=key)
            self.D_tensor = np.array(D, dtype=float)
        elif isinstance(D, list) and len(D) == nd:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in D):
                if any(v <= 0 for v in D):
                    raise c.error(f"must be positive, got {D!r}", key=key)
                self.D_const = np.array(D, dtype=float)
            else:
                self.D_exprs = []
                for v in D:
                    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                        raise c.error(f"entries are numbers or expressions, got {v!r}", key=key)
                    self.D_exprs.append(c.expression(key, names, text=v))
        else:
            raise c.error(f"expected a number, an expression, a list of {nd} entries or an "
                          f"{nd} x {nd} tensor, got {D!r}", key=key)
        self.D_time = self.D_exprs is not None and any("t" in e.names for e in self.D_exprs)
        self.D_space = self.D_exprs is not None and any(set(e.names) - {"t"} for e in self.D_exprs)

    def diffusion_at(self, t):
        """The diffusion argument of FokkerPlanckOperator at time t."""
        if self.sgd is not None:
            return [self.sgd.diffusion(self.mesh.faces[0], self.case["sgd.lr"], self.case["sgd.batch"])]
        if self.D_tensor is not None:
            return self.D_tensor
        if self.D_const is not None:
            return self.D_const
        mesh, t = self.mesh, np.float64(t)
        if not self.D_space:
            return np.array([float(np.broadcast_to(e(t=t), ()))
                             for e in self.D_exprs])
        fields = []
        for d, e in enumerate(self.D_exprs):
            env = coordinate_env("x", face_coordinates(mesh, d))
            shape = list(mesh.cells)
            shape[d] += 1
            fields.append(e(shape=tuple(shape), t=t, **env))
        return fields

    def D_scalar(self, t):
        """The scalar D when the diffusion is isotropic and constant in space (else None)."""
        if self.D_tensor is not None or self.D_space:
            return None
        D = np.asarray(self.diffusion_at(t), dtype=float)
        return float(D[0]) if np.all(D == D[0]) else None

    def operator(self, t):
        mesh = self.mesh
        if self.sgd is not None:
            lr, B = self.case["sgd.lr"], self.case["sgd.batch"]
            return FokkerPlanckOperator(mesh, self.sgd.f(mesh.axes[0]),
                                        [self.sgd.ito_drift(mesh.faces[0], lr, B)],
                                        self.diffusion_at(t), self.absorbing)
        potential = self.f_expr(shape=mesh.shape, **self.env) if self.f_expr is not None else None
        drift = None
        if self.b_exprs is not None:
            drift = []
            for d, e in enumerate(self.b_exprs):
                shape = list(mesh.cells)
                shape[d] += 1
                drift.append(e(shape=tuple(shape), **coordinate_env("x", face_coordinates(mesh, d))))
        return FokkerPlanckOperator(mesh, potential, drift, self.diffusion_at(t), self.absorbing)

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
                t.update(steps=steps, dt=t["t_end"] / steps)
            elif t["dt"] > safe * (1 + 1e-12):
                raise self.case.error(f"dt = {t['dt']:.4g} exceeds the largest positivity-preserving "
                                      f"explicit step {safe:.4g}; leave dt out for an automatic step "
                                      "or use an implicit stepper", key="time.dt")
        self.steps, self.dt, self.t_end = int(t["steps"]), float(t["dt"]), float(t["t_end"])

    def initial(self):
        mesh = self.mesh
        rho = np.asarray(self.case.expression("model.initial", self.names)(shape=mesh.shape, **self.env),
                         dtype=float).copy()
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

    def work_units(self):
        return max(self.steps, 1)

    # -- particles ----------------------------------------------------------
    def _ensemble(self):
        c, mesh, nd = self.case, self.mesh, self.mesh.ndim
        span = np.array([u - l for l, u in zip(mesh.lower, mesh.upper)])
        eps = 1e-6 * span

        def env(X):
            return coordinate_env("x", [X[:, d] for d in range(nd)])

        def velocity(X, t):
            n = X.shape[0]
            v = np.zeros((n, nd))
            if self.f_expr is not None:
                for d in range(nd):
                    Xp, Xm = X.copy(), X.copy()
                    Xp[:, d] += eps[d]
                    Xm[:, d] -= eps[d]
                    v[:, d] -= (self.f_expr(shape=(n,), **env(Xp)) - self.f_expr(shape=(n,), **env(Xm))) \
                        / (2 * eps[d])
            if self.b_exprs is not None:
                for d, e in enumerate(self.b_exprs):
                    v[:, d] += e(shape=(n,), **env(X))
            if self.D_space:  # Ito correction: + d_d D_d
                for d, e in enumerate(self.D_exprs):
                    Xp, Xm = X.copy(), X.copy()
                    Xp[:, d] += eps[d]
                    Xm[:, d] -= eps[d]
                    v[:, d] += (e(shape=(n,), t=np.float64(t), **env(Xp))
                                - e(shape=(n,), t=np.float64(t), **env(Xm))) / (2 * eps[d])
            return v

        if self.D_tensor is not None:
            S = np.linalg.cholesky(2.0 * self.D_tensor)

            def noise(X, t, dW):
                return dW @ S.T
        else:
            def noise(X, t, dW):
                if self.D_const is not None:
                    return dW * np.sqrt(2.0 * self.D_const)
                n = X.shape[0]
                s = np.stack([np.broadcast_to(e(shape=(n,), t=np.float64(t), **env(X)), (n,))
                              for e in self.D_exprs], axis=1)
                return dW * np.sqrt(2.0 * s)

        absorbing = None
        if self.absorbing_expr is not None:
            def absorbing(X):
                return np.asarray(self.absorbing_expr(shape=(X.shape[0],), **env(X))) > 0
        return ParticleEnsemble(mesh, self.op0.kinds, velocity, noise, absorbing, seed=c["particles.seed"])

    # -- running ------------------------------------------------------------
    def run(self, sink, progress=lambda k: None):
        c, mesh = self.case, self.mesh
        want = set(self.saved_fields())
        op = self.op0
        exact = c.get("exact") or {}
        attrs = {"stepper": self.stepper, "dt": self.dt, "steps": self.steps,
                 "gradient_drift": bool(op.is_gradient), "boundary_kinds": [list(k) for k in op.kinds]}
        sink.set_attrs(attrs)
        summary = {}
        state = {"n_saved": 0}

        pcount = c["particles.count"]
        ens = None

        def save(t, rho, op):
            Ds = self.D_scalar(t)
            gibbs = None
            if op.potential is not None and Ds is not None and op.is_gradient and not self.has_absorption:
                gibbs = op.gibbs(Ds)
            diags, J = fpd.diagnostics(op, rho, Ds, gibbs)
            if self.has_absorption:
                diags["survival"] = diags["mass"]
            if "rho" in exact:
                ex = self.exact_fields(t)["rho"]
                diags["error_rho"] = float(np.sqrt(mesh.integrate((rho - ex) ** 2)))
            fields = {}
            if "rho" in want:
                fields["rho"] = rho
            if "current" in want:
                for d in range(mesh.ndim):
                    fields[f"current_{d + 1}"] = J[d]
            if self.chains is not None:
                lr = c["sgd.lr"]
                n_target = int(round(t / lr))
                steps = n_target - self.chain_step
                if steps > 0:
                    self.chain_theta = self.sgd.run_chains(self.chain_theta, lr, c["sgd.batch"], steps,
                                                           self.chains, mesh.lower[0], mesh.upper[0])
                    self.chain_step = n_target
                hist = np.histogram(self.chain_theta, bins=mesh.faces[0])[0] / (
                    self.chain_theta.size * mesh.cell_volume)
                diags["sgd_l1"] = float(mesh.integrate(np.abs(hist - rho)))
                diags["sgd_mean"] = float(self.chain_theta.mean())
                diags["sgd_var"] = float(self.chain_theta.var())
                self.chain_hist = hist
            if ens is not None:
                ens.run_until(t, self.pdt)
                hist = ens.density()
                diags["particle_survival"] = float(ens.alive.mean())
                diags["particle_l1"] = float(mesh.integrate(np.abs(hist - rho)))
                pm = ens.mean()
                for d in range(mesh.ndim):
                    diags[f"particle_mean_{d + 1}"] = float(pm[d])
            sink.save(t, fields, diags)
            state["n_saved"] += 1
            state["last"] = diags

        if self.stepper == "steady":
            A = op.matrix()
            w = np.full(mesh.size, mesh.cell_volume)
            if self.absorbing is not None:
                raise c.error("a steady state with an absorbing set is zero; use a time stepper",
                              key="time.stepper")
            if self.petsc:
                pb = self._petsc_module()
                # an iterative solve of a density spanning many decades stagnates near 1e-11:
                # krylov_tol, but not below 1e-10 (-ksp_rtol in petsc_options overrides)
                rho, resid, info = pb.steady_state(A, w, comm=self.comm, options=c["solver.petsc_options"],
                                                   rtol=max(c["solver.krylov_tol"], 1e-10))
                summary["krylov_iterations"] = info["iterations"]
                sink.set_attrs({"petsc_solver": f"{info['ksp']}/{info['pc']}", "petsc_ranks": self._ranks()})
            else:
                rho, resid = steady_state(A, w, pivot=op.has_cross_terms)
            rho = rho.reshape(mesh.cells)
            save(0.0, rho, op)
            summary["steady_residual"] = resid
            if op.is_gradient:
                summary["steady_gibbs_max_rel_error"] = float(np.abs(rho - op.gibbs()).max() / rho.max())
            progress(1)
        else:
            rho = self.initial()
            rho0 = rho.copy()
            self.chains = None
            if self.sgd is not None and c["sgd.chains"]:
                lr = c["sgd.lr"]
                if abs(self.dt / lr - round(self.dt / lr)) > 1e-9 * self.dt / lr or self.dt < lr * (1 - 1e-12):
                    raise c.error(f"with sgd.chains the PDE step dt = {self.dt:g} must be a whole number of "
                                  f"SGD steps lr = {lr:g}", key="time.dt")
                self.chains = np.random.default_rng(c["sgd.chain_seed"])
                X0 = ParticleEnsemble(mesh, op.kinds, None, None, seed=c["sgd.chain_seed"]).sample(
                    rho0, c["sgd.chains"])
                self.chain_theta, self.chain_step = X0[:, 0].copy(), 0
            if pcount:
                self.pdt = c["particles.dt"] or min(self.dt, 0.01)
                ens = self._ensemble()
                start = c["particles.start"]
                if start is not None:
                    X0 = np.tile(np.atleast_1d(np.asarray(start, dtype=float)), (pcount, 1))
                else:
                    X0 = ens.sample(rho0, pcount)
                ens.start(X0)
            every = c["time.save_every"]
            dt, steps = self.dt, self.steps
            save(0.0, rho, op)
            if self.stepper == "explicit" and self.petsc:
                rho = self._explicit_dmda(op, rho, save, progress, sink)
            elif self.stepper == "explicit":
                n = 0
                while n < steps:
                    chunk = min(every - n % every, steps - n)
                    if self.D_time:
                        for k in range(chunk):
                            op = self.operator((n + k) * dt)
                            rho = self._euler(op, rho, dt, 1)
                    else:
                        rho = self._euler(op, rho, dt, chunk)
                    n += chunk
                    if not np.all(np.isfinite(rho)):
                        from solvers.errors import NumericalError
                        raise NumericalError(f"non-finite density at t = {n * dt:g}")
                    progress(chunk)
                    save(n * dt, rho, self.operator(n * dt) if self.D_time else op)
            elif self.petsc:
                pb = self._petsc_module()
                st = pb.PetscLinearStepper(self.stepper, op.matrix(), dt, comm=self.comm,
                                           options=c["solver.petsc_options"], rtol=c["solver.krylov_tol"])
                sink.set_attrs({"petsc_solver": st.ksp_description(), "petsc_ts": st.ts_description(),
                                "petsc_ranks": self._ranks()})
                st.set_state(rho.ravel())
                n = 0
                while n < steps:
                    chunk = min(every - n % every, steps - n)
                    st.advance(chunk, progress)
                    n += chunk
                    save(n * dt, st.gather().reshape(mesh.cells), op)
                rho = st.gather().reshape(mesh.cells)
                summary["krylov_iterations"] = st.iterations
                st.destroy()
            else:
                matrix = (lambda t: self.operator(t).matrix()) if self.D_time else op.matrix()
                st = LinearStepper(self.stepper, matrix, dt, pivot=op.has_cross_terms)
                y = rho.ravel().copy()
                for n in range(steps):
                    y = st.step(y, n * dt)
                    progress(1)
                    if (n + 1) % every == 0 or n + 1 == steps:
                        t = (n + 1) * dt
                        save(t, y.reshape(mesh.cells), self.operator(t) if self.D_time else op)
                rho = y.reshape(mesh.cells)
                summary["factorisations"] = st.factorisations
            # first passage
            if self.has_absorption:
                T = fpd.mfpt_field(self.op0.matrix(), self.absorbing).reshape(mesh.cells)
                sink.write("analysis", "mfpt", T, {"meaning": "mean first-passage time to the absorbing "
                                                   "set from each cell (backward equation A^T T = -1)"})
                summary["mfpt_initial"] = float(mesh.integrate(T * rho0) / mesh.integrate(rho0))
                point = c["model.mfpt_from"]
                if point is not None:
                    interp = RegularGridInterpolator(mesh.axes, T, bounds_error=False, fill_value=None)
                    summary["mfpt_at_point"] = float(interp(np.atleast_1d(point).reshape(1, -1))[0])
            kr = c["model.kramers"]
            if kr is not None and self.f_expr is not None and mesh.ndim == 1 and self.D_scalar(0.0):
                f = lambda x: float(self.f_expr(x=np.float64(x), x1=np.float64(x)))  # noqa: E731
                summary["kramers_time"] = fpd.kramers_1d(f, kr[0], kr[1], self.D_scalar(0.0))
            if ens is not None:
                sink.write("analysis", "particle_histogram", ens.density(),
                           {"meaning": "particle density at t_end (histogram on the cells, per initial "
                                       "particle: its mass is the particle survival)"})
                if c["particles.until_absorbed"] and self.has_absorption:
                    tmax = c["particles.max_time"]
                    while ens.alive.any() and ens.t < tmax:
                        ens.run_until(min(ens.t + 100.0 * max(self.t_end, 1.0), tmax), self.pdt)
                sink.write("analysis", "particle_positions", ens.X)
                sink.write("analysis", "particle_alive", ens.alive.astype(np.int8))
                if self.has_absorption:
                    et = ens.exit_time
                    sink.write("analysis", "particle_exit_times", et,
                               {"meaning": "absorption time of each particle (nan: not absorbed)"})
                    done = np.isfinite(et)
                    if done.any():
                        summary["particle_mfpt"] = float(np.mean(et[done]))
                        summary["particle_mfpt_stderr"] = float(np.std(et[done], ddof=1) / np.sqrt(done.sum())) \
                            if done.sum() > 1 else float("nan")
                        summary["particle_absorbed_fraction"] = float(done.mean())
        if getattr(self, "chains", None) is not None:
            sink.write("analysis", "sgd_histogram", self.chain_hist,
                       {"meaning": "density of the SGD runs at the last save (histogram on the cells)"})
            sink.write("analysis", "sgd_theta", self.chain_theta)
            sink.write("analysis", "sgd_diffusion", self.diffusion_at(0.0)[0],
                       {"meaning": "D(theta) = lr Sigma(theta) / (2 batch) at the cell faces"})
            sink.write("analysis", "sgd_loss", self.sgd.f(mesh.axes[0]))
        last = state.get("last", {})
        for k in ("mass", "free_energy", "relative_entropy", "circulation", "error_rho", "min_rho",
                  "sgd_l1", "sgd_mean", "sgd_var"):
            if k in last:
                summary[k] = last[k]
        summary = {k: float(v) for k, v in summary.items()}
        sink.set_attrs(summary)
        return summary

    def _petsc_module(self):
        from solvers import petsc_backend

        try:
            petsc_backend.petsc()
        except petsc_backend.PetscUnavailable as exc:
            raise self.case.error(str(exc), key="solver.backend") from None
        return petsc_backend

    def _explicit_dmda(self, op, rho, save, progress, sink):
        """The explicit stepper on a DMDA over the ranks (forward Euler with the serial kernel's
        per-cell arithmetic); saves gather the density to rank 0, which alone computes the
        diagnostics (the other ranks return None)."""
        self._petsc_module()
        from .dmda import DmdaEuler
        from solvers.errors import NumericalError

        st = DmdaEuler(op, self.comm)
        sink.set_attrs({"petsc_solver": "dmda/explicit", "petsc_ranks": self._ranks()})
        try:
            st.set_state(rho)
            every, dt, steps, n = self.case["time.save_every"], self.dt, self.steps, 0
            whole = rho
            while n < steps:
                chunk = min(every - n % every, steps - n)
                st.advance(chunk, dt)
                n += chunk
                if not st.all_finite():
                    raise NumericalError(f"non-finite density at t = {n * dt:g}")
                progress(chunk)
                whole = st.gather(root_only=True)
                if whole is not None:
                    save(n * dt, whole, op)
            return whole
        finally:
            st.destroy()

    def _ranks(self):
        return 1 if self.comm is None else int(self.comm.Get_size())

    @staticmethod
    def _euler(op, rho, dt, nsteps):
        if op.has_cross_terms:
            A = op.matrix()
            y = rho.ravel()
            for _ in range(nsteps):
                y = y + dt * (A @ y)
            return y.reshape(rho.shape)
        return op.explicit_steps(rho, dt, nsteps)
