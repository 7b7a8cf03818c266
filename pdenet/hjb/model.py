"""Case-file model ``hjb``: controlled SGD (thesis §4.4, PRODUCT.md 1.3).

Value function of dX = -(grad f + alpha) ds + sqrt(2 nu) dB with cost
E[V(X_T) + 1/2 int |alpha|^2]: the HJB -u_t = -grad f.grad u - |grad u|^2/2 + nu Lap u,
u(., T) = V (thesis 4.31), solved backward (in tau = T - t it is u_tau + H = nu Lap u with
H = |p|^2/2 + grad f.p: Godunov/WENO5 as in ``hamilton-jacobi``); the optimal feedback
alpha* = grad u (4.32); the backward Kolmogorov equation -v_t = -grad f.grad v + nu Lap v of
plain SGD (H = grad f.p) for comparison (Theorem 4.11: u <= v). The density of (4.33) under
the controlled drift -(grad f + alpha*), and that of plain SGD, are solved by the Fokker-Planck
finite-volume scheme (``pdenet.hjb.density``) and/or carried by particles (histograms on the
mesh; ``model.density``); the particle estimates of the two expected costs are compared with
u(x0, 0) and v(x0, 0).
"""
import numpy as np

from solvers.march import SaveSchedule, march

from ..case import REQUIRED, Key
from ..errors import CaseError
from ..expr import coordinate_names
from ..hj.common import OUTPUTS_ALIAS, TIME_SCHEMA, check_mesh, outputs_alias, resolve_nu
from ..hj.scheme import HJScheme, HJSystem
from ..io.sink import SinkWriter
from ..landscape import Landscape, interpolate
from ..models.base import Model
from .density import ForwardDensity, initial_density
from .forward import ForwardState, ForwardSystem
from .observers import DensityComparison, KeepFields, ParticleDensities, PDEDensities, ValueFunctions
from .particles import Particles


class HJBModel(Model):
    """Controlled-SGD HJB, optimal feedback, backward Kolmogorov and particle densities (thesis 4.31-4.34)."""

    name = "hjb"
    unused_keys = ("time.checkpoint_every", "solver", "exact")
    fields = ("u", "v", "alpha", "rho", "rho_sgd", "rho_controlled", "rho_uncontrolled")
    PDE_FIELDS = ("rho_controlled", "rho_uncontrolled")
    PARTICLE_FIELDS = ("rho", "rho_sgd")
    coordinate_prefix = "x"
    schema = {
        "time": TIME_SCHEMA,
        "model": {
            "f": Key("expr", REQUIRED, "Loss f(x) (drift -grad f, by central differences)."),
            "V": Key("expr", None, "Terminal cost V(x) = u(x, T) (default: f)."),
            "nu": Key("float", None, "Diffusion coefficient nu > 0 of dX = ... + sqrt(2 nu) dB (give nu or beta)."),
            "beta": Key("float", None, "Inverse temperature: nu = 1/(2 beta) (thesis: beta^-1/2)."),
            "flux": Key("str", "godunov", "Numerical Hamiltonian.", choices=["godunov", "llf"]),
            "order": Key("int", 5, "1 or 5 (WENO5).", choices=[1, 5]),
            "outputs": OUTPUTS_ALIAS,
            "x0": Key("floats", 0.0, "Start point of the particles (one number per dimension or one for all)."),
            "spread": Key("float", 0.0, "Standard deviation of a Gaussian spread of the start points "
                          "(0: all at x0, the setting of Theorem 4.11).", minimum=0.0),
            "particles": Key("int", 4000, "Particles per process (controlled, uncontrolled).", positive=True),
            "particle_steps": Key("int", 200, "Euler-Maruyama steps on [0, T]; the feedback grad u is "
                                  "stored at these times.", positive=True),
            "seed": Key("int", 0, "Seed.", minimum=0),
            "density": Key("str", "both", "Forward densities saved: pde (Fokker-Planck finite volumes: "
                           "rho_controlled, rho_uncontrolled), particles (histograms rho, rho_sgd) or both "
                           "(with the PDE/particle comparison diagnostics). The particles always run "
                           "(cost estimates).", choices=["pde", "particles", "both"]),
            "density_stepper": Key("str", "explicit", "PDE density time stepping: explicit (forward "
                                   "Euler, substeps within the positivity limit) or beuler (one implicit "
                                   "Euler step per particle step).", choices=["explicit", "beuler"]),
        },
    }

    @classmethod
    def validate(cls, data):
        data["model"]["nu_value"] = resolve_nu(data["model"])
        outputs_alias(data)
        check_mesh(data)
        if data["time"]["t_end"] is None:
            raise CaseError("is required (the horizon T)", key="time.t_end")
        for key in ("steps", "dt"):
            if data["time"].get(key) is not None:
                raise CaseError("hjb chooses its step from the CFL and diffusion limits (time.cfl); "
                                "set model.particle_steps for the particles", key=f"time.{key}")
        return data

    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        self.nu = case["model.nu_value"]
        d = self.mesh.ndim
        self.f = Landscape(case, "model.f", d)
        self.V = Landscape(case, "model.V", d) if case["model.V"] is not None else self.f
        self.V.on_mesh(self.mesh)  # evaluated now (validation), not first in run
        self.T = case["time.t_end"]
        self.drift = self.f.grad_on_mesh(self.mesh)
        try:
            self.hjb = self._scheme(1.0)
            self.kolmogorov = self._scheme(0.0)
        except ValueError as exc:
            raise case.error(str(exc), key="mesh.cells") from None
        x0 = np.atleast_1d(np.asarray(case["model.x0"], float))
        if x0.size not in (1, d):
            raise case.error(f"has {x0.size} entries for a {d}-D mesh", key="model.x0")
        self.x0 = np.broadcast_to(x0, (d,)).copy()
        self.schedule = self._schedule(case["model.particle_steps"])
        self.want = set(self.saved_fields())

    def _schedule(self, K):
        """The saves on the particle steps t_k = T k/K: time.outputs equally spaced (rounded to
        steps) or every time.save_every steps."""
        if self.case.get("time.save_every") is not None:
            idx = self.save_schedule(self.T, steps=K).steps
        else:
            n = len(self.save_schedule(self.T).times) - 1
            idx = [round(K * j / n) for j in range(n + 1)]
        try:
            return SaveSchedule(tuple(self.T * k / K for k in idx), tuple(idx))
        except ValueError:
            raise self.case.error(f"{len(idx) - 1} saves do not fit on the {K} particle steps "
                                  "(model.particle_steps)", key="time.outputs") from None

    def _scheme(self, a):
        c = self.case
        stepper = c["time.stepper"]
        return HJScheme(self.mesh, nu=self.nu, order=c["model.order"], flux=c["model.flux"], a=a,
                        drift=self.drift, cfl=c["time.cfl"], stepper=stepper)

    def memory_counts(self):
        """The value functions and their gradients at every particle step ((K+1) (d+2) cells) and
        the particles (state, copies and per-particle costs, a few arrays of d or 1 per particle)."""
        c, d = self.case, self.mesh.ndim
        return {"model.particle_steps": 8 * (c["model.particle_steps"] + 1) * (d + 2) * self.mesh.size,
                "model.particles": 8 * c["model.particles"] * (4 * d + 6)}

    def work_units(self):
        K = self.case["model.particle_steps"]
        # two backward solves, the particles and the PDE densities: K steps each
        return 3 * K + (K if self.case["model.density"] != "particles" else 0)

    def saved_fields(self):
        density = self.case["model.density"]
        drop = {"pde": self.PARTICLE_FIELDS, "particles": self.PDE_FIELDS}.get(density, ())
        if self.case.get("output.fields") is None:
            return tuple(f for f in self.fields if f not in drop)
        wanted = super().saved_fields()
        bad = [f for f in wanted if f in drop]
        if bad:
            raise self.case.error(f"{bad[0]} is not computed with model.density = {density!r}",
                                  key="output.fields")
        return wanted

    def _backward(self, scheme, K, progress):
        """Values at the times t_k = T k/K (k = 0..K), solved backward from V (in tau = T - t);
        returns (values (K+1, *cells), steps)."""
        levels, system = [], HJSystem(scheme)
        march(system, self.V.on_mesh(self.mesh), SaveSchedule.uniform(self.T, K),
              [lambda frame: levels.append(frame.state)], progress)
        return np.stack(levels[::-1]), system.steps

    def run(self, sink, progress=lambda k: None):
        c, mesh, d = self.case, self.mesh, self.mesh.ndim
        K = c["model.particle_steps"]
        U, n_u = self._backward(self.hjb, K, progress)
        Vk, n_v = self._backward(self.kolmogorov, K, progress)
        grads = np.stack([self.hjb.gradient(U[k]) for k in range(K + 1)])  # (K+1, d, *cells)

        density = c["model.density"]
        pde, parts = density != "particles", density != "pde"
        f_cells = self.f.on_mesh(mesh)
        names = coordinate_names("x", d)[:d]
        rng = np.random.default_rng(c["model.seed"])
        start = ForwardState(0, Particles.start(self.x0, c["model.spread"], c["model.particles"], rng))
        fd = None
        if pde:
            fd = ForwardDensity(mesh, f_cells, self.nu, c["model.density_stepper"])
            start.rho_controlled = initial_density(mesh, self.x0, c["model.spread"])
            start.rho_uncontrolled = start.rho_controlled.copy()
        system = ForwardSystem(self.T / K, mesh, self.nu, self.f.grad, grads, rng, U, fd)
        compare = DensityComparison(mesh, names) if pde and parts else None
        observers = [ValueFunctions(U, Vk, grads), *([ParticleDensities(mesh, f_cells)] if parts else []),
                     *([PDEDensities(mesh, f_cells, names)] if pde else []), *([compare] if compare else []),
                     KeepFields(self.want), SinkWriter(sink)]
        end = march(system, start, self.schedule, observers, lambda n: progress(n * (2 if pde else 1)))

        X, Y, running = end.particles.X, end.particles.Y, end.particles.running
        VX, VY = self.V(X), self.V(Y)
        J = VX + running
        u0 = float(interpolate(U[0], mesh, self.x0[None])[0])
        v0 = float(interpolate(Vk[0], mesh, self.x0[None])[0])
        se = lambda a: float(a.std(ddof=1) / np.sqrt(a.size))  # noqa: E731
        summary = {
            "nu": self.nu, "T": self.T, "steps_hjb": n_u, "steps_kolmogorov": n_v,
            "u_x0": u0, "v_x0": v0,
            "cost_controlled": float(J.mean()), "cost_controlled_stderr": se(J),
            "terminal_controlled": float(VX.mean()), "terminal_controlled_stderr": se(VX),
            "control_energy": float(running.mean()),
            "terminal_sgd": float(VY.mean()), "terminal_sgd_stderr": se(VY),
            "u_minus_v_max": float(np.max(U - Vk)),
            "density": density,
        }
        if pde:
            summary.update(density_stepper=c["model.density_stepper"], density_steps=fd.steps,
                           density_operators=fd.operators)
        if compare:
            summary.update(density_mean_max_z=compare.worst_z, density_l1_over_noise_max=compare.worst_l1)
        sink.write("analysis", "x0", self.x0)
        sink.write("analysis", "cost_controlled_samples", J, {"meaning": "V(X_T) + 1/2 int |alpha*|^2 per particle"})
        sink.write("analysis", "terminal_sgd_samples", VY, {"meaning": "V(X_T) of plain SGD per particle"})
        sink.set_attrs(summary)
        return summary
