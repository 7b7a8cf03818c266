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

from solvers.ssp import integrate

from ..case import REQUIRED, Key
from ..errors import CaseError
from ..expr import coordinate_names
from ..hj.common import TIME_SCHEMA, check_mesh, resolve_nu
from ..landscape import Landscape, interpolate
from .density import ForwardDensity, histogram_noise_l1, initial_density
from ..hj.scheme import HJScheme
from ..models.base import Model


class HJBModel(Model):
    """Controlled-SGD HJB, optimal feedback, backward Kolmogorov and particle densities (thesis 4.31-4.34)."""

    name = "hjb"
    unused_keys = ("time.save_every", "time.checkpoint_every", "solver", "exact")
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
            "outputs": Key("int", 4, "Number of saved times after t = 0.", positive=True),
            "x0": Key("floats", 0.0, "Start point of the particles (one number per dimension or one for all)."),
            "spread": Key("float", 0.0, "Standard deviation of a Gaussian spread of the start points "
                          "(0: all at x0, the setting of Theorem 4.11).", minimum=0.0),
            "particles": Key("int", 4000, "Particles per process (controlled, uncontrolled).", positive=True),
            "particle_steps": Key("int", 200, "Euler-Maruyama steps on [0, T]; the feedback grad u is "
                                  "stored at these times.", positive=True),
            "seed": Key("int", 0, "Seed."),
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

    def _scheme(self, a):
        c = self.case
        stepper = c["time.stepper"]
        return HJScheme(self.mesh, nu=self.nu, order=c["model.order"], flux=c["model.flux"], a=a,
                        drift=self.drift, cfl=c["time.cfl"], stepper=stepper)

    def work_units(self):
        K = self.case["model.particle_steps"]
        return 2 * K + 2 + (K if self.case["model.density"] != "particles" else 0)

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

    def _pde_densities(self, U, save_k, progress):
        """PDE densities (controlled, uncontrolled) at the save indices k, the controlled
        potential f + U[k] on [t_k, t_k+1) (the feedback the particles use there)."""
        c, mesh = self.case, self.mesh
        K = U.shape[0] - 1
        fd = ForwardDensity(mesh, self.f.on_mesh(mesh), self.nu, c["model.density_stepper"])
        rc = initial_density(mesh, self.x0, c["model.spread"])
        ru = rc.copy()
        dt = self.T / K
        out_c, out_u = {}, {}
        for k in range(K + 1):
            if k in save_k:
                out_c[k], out_u[k] = rc, ru
            if k == K:
                break
            rc = fd.advance(rc, dt, U[k])
            ru = fd.advance(ru, dt)
            progress(1)
        return out_c, out_u, fd

    def _backward(self, scheme, levels, progress):
        """Values at forward times t_k = T k/K (k = 0..K), computed backward from V."""
        K = levels
        w = self.V.on_mesh(self.mesh)
        out = [None] * (K + 1)
        out[K] = w
        steps = 0
        for k in range(K - 1, -1, -1):
            tau0, tau1 = self.T * (K - 1 - k) / K, self.T * (K - k) / K
            w, n = integrate(scheme.step, w, tau0, tau1, scheme.max_dt)
            out[k] = w
            steps += n
            progress(1)
        return np.stack(out), steps

    def _outside(self, pts):
        """Fraction of the particles outside the box on its non-periodic axes."""
        m, out = self.mesh, np.zeros(pts.shape[0], bool)
        for d in range(m.ndim):
            if m.boundary[d][0].kind != "periodic":
                out |= (pts[:, d] < m.lower[d]) | (pts[:, d] > m.upper[d])
        return float(out.mean())

    def _wrap(self, pts):
        """Positions with periodic axes wrapped into the box (the particles live on the torus)."""
        m = self.mesh
        pts = pts.copy()
        for d in range(m.ndim):
            if m.boundary[d][0].kind == "periodic":
                pts[:, d] = m.lower[d] + np.mod(pts[:, d] - m.lower[d], m.upper[d] - m.lower[d])
        return pts

    def _histogram(self, pts):
        m = self.mesh
        edges = [np.asarray(f) for f in m.faces]
        H, _ = np.histogramdd(self._wrap(pts), bins=edges)
        return H / (pts.shape[0] * m.cell_volume)

    def run(self, sink, progress=lambda k: None):
        c, mesh, d = self.case, self.mesh, self.mesh.ndim
        K = c["model.particle_steps"]
        U, n_u = self._backward(self.hjb, K, progress)
        Vk, n_v = self._backward(self.kolmogorov, K, progress)
        grads = np.stack([self.hjb.gradient(U[k]) for k in range(K + 1)])  # (K+1, d, *cells)

        # particles: controlled (alpha* = grad u) and plain SGD, same noise
        rng = np.random.default_rng(c["model.seed"])
        n = c["model.particles"]
        dt = self.T / K
        X = self.x0[None, :] + c["model.spread"] * rng.standard_normal((n, d))
        Y = X.copy()
        running = np.zeros(n)
        nsave = c["model.outputs"]
        save_k = {round(K * j / nsave): j for j in range(nsave + 1)}
        rho, rho_sgd, moments = {}, {}, {}
        for k in range(K + 1):
            if k in save_k:
                rho[k], rho_sgd[k] = self._histogram(X), self._histogram(Y)
                Xw, Yw = self._wrap(X), self._wrap(Y)
                moments[k] = (Xw.mean(axis=0), Xw.std(axis=0, ddof=1) / np.sqrt(n),
                              Yw.mean(axis=0), Yw.std(axis=0, ddof=1) / np.sqrt(n),
                              self._outside(X), self._outside(Y))
            if k == K:
                break
            alpha = np.stack([interpolate(grads[k, e], mesh, X) for e in range(d)], axis=-1)
            running += 0.5 * np.sum(alpha ** 2, axis=1) * dt
            xi = np.sqrt(2.0 * self.nu * dt) * rng.standard_normal((n, d))
            X = X - (self.f.grad(X) + alpha) * dt + xi
            Y = Y - self.f.grad(Y) * dt + xi
            progress(1)
        VX, VY = self.V(X), self.V(Y)
        J = VX + running
        u0 = float(interpolate(U[0], mesh, self.x0[None])[0])
        v0 = float(interpolate(Vk[0], mesh, self.x0[None])[0])
        se = lambda a: float(a.std(ddof=1) / np.sqrt(a.size))  # noqa: E731

        density = c["model.density"]
        pde, parts = density != "particles", density != "pde"
        if pde:
            rc, ru, fd = self._pde_densities(U, save_k, progress)
        want = set(self.saved_fields())
        f_cells = self.f.on_mesh(mesh)
        names = coordinate_names("x", d)[:d]
        centres = mesh.centres()
        worst_z, worst_l1 = 0.0, 0.0
        for k, j in sorted(save_k.items()):
            t = self.T * k / K
            fields = {"u": U[k], "v": Vk[k], "alpha": grads[k]}
            diag = {"u_minus_v_max": float(np.max(U[k] - Vk[k]))}
            if parts:
                fields.update(rho=rho[k], rho_sgd=rho_sgd[k])
                diag.update({"mass_rho": float(mesh.integrate(rho[k])),
                             "mean_f_controlled": float(mesh.integrate(rho[k] * f_cells)),
                             "mean_f_sgd": float(mesh.integrate(rho_sgd[k] * f_cells))})
            if pde:
                fields.update(rho_controlled=rc[k], rho_uncontrolled=ru[k])
                for tag, r in (("controlled", rc[k]), ("uncontrolled", ru[k])):
                    diag[f"mass_rho_{tag}"] = float(mesh.integrate(r))
                    diag[f"min_rho_{tag}"] = float(r.min())
                    diag[f"mean_f_{tag}_pde"] = float(mesh.integrate(r * f_cells))
                    for e, name in enumerate(names):
                        diag[f"mean_{name}_{tag}_pde"] = float(mesh.integrate(r * centres[e]))
            if pde and parts:
                mx, sx, my, sy, outx, outy = moments[k]
                for tag, r, hist, mean, sem, out in (("controlled", rc[k], rho[k], mx, sx, outx),
                                                     ("uncontrolled", ru[k], rho_sgd[k], my, sy, outy)):
                    l1 = float(mesh.integrate(np.abs(hist - r)))
                    noise = histogram_noise_l1(r, mesh, n)
                    diag[f"l1_{tag}"] = l1
                    diag[f"l1_noise_{tag}"] = noise
                    diag[f"particles_outside_{tag}"] = out
                    for e, name in enumerate(names):
                        diag[f"mean_{name}_{tag}_particles"] = float(mean[e])
                        diag[f"mean_{name}_{tag}_stderr"] = float(sem[e])
                        if k > 0:
                            z = abs(mean[e] - diag[f"mean_{name}_{tag}_pde"]) / sem[e]
                            worst_z = max(worst_z, float(z))
                    if k > 0 and noise > 0:
                        worst_l1 = max(worst_l1, l1 / noise)
            sink.save(t, {name: a for name, a in fields.items() if name in want}, diag)
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
        if pde and parts:
            summary.update(density_mean_max_z=worst_z, density_l1_over_noise_max=worst_l1)
        sink.write("analysis", "x0", self.x0)
        sink.write("analysis", "cost_controlled_samples", J, {"meaning": "V(X_T) + 1/2 int |alpha*|^2 per particle"})
        sink.write("analysis", "terminal_sgd_samples", VY, {"meaning": "V(X_T) of plain SGD per particle"})
        sink.set_attrs(summary)
        return summary
