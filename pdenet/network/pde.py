"""The width-depth network PDE  f_t = sigma(a - B_b f),  discretised.

Midpoint quadrature on the label mesh and a time stepper turn it into a
residual network of width N (cells) and depth L (steps); explicit Euler is
exactly z_{l+1} = z_l + tau sigma(a_l - B_l z_l) with B_l = h b_l.

:class:`NetworkPDE` implements the controlled-system protocol of
:mod:`solvers.protocol` and computes the loss and its exact gradient (the
discrete adjoint of the chosen stepper) with respect to every parameter:
``a`` (K, N), the kernel parameters, and the head's ``W``, ``mu``.
The discrete co-state lambda_n = dJ/df_n relates to the paper's r by
r_n = S lambda_n / h for the identity-head L2 loss (r(T) = f(T) - target).
"""
import numpy as np

from solvers import Schedule, solve_adjoint, solve_forward

from . import activations as act
from .blas import small_gemms


class NetworkPDE:
    """Discrete network PDE with parameters ``a`` (K, N), ``operator`` (kernel b) and ``head``.

    ``tikhonov`` = lambda adds (lambda/2) R(a, b), R the quadrature of the squared
    parameters over Y (x Y) x (0, T) (paper 4.6; the factor 1/2 makes the
    gradient lambda a, lambda b as in 4.7).
    """

    def __init__(self, mesh, activation, a, operator, head, schedule, stepper, tikhonov=0.0):
        self.mesh, self.h, self.N = mesh, mesh.cell_volume, mesh.size
        self.activation = activation if isinstance(activation, act.Activation) else act.Activation(activation)
        self.code = self.activation.code
        self.a = np.ascontiguousarray(a, dtype=float)
        self.operator, self.head, self.schedule, self.stepper = operator, head, schedule, stepper
        self.tikhonov = float(tikhonov)
        K = schedule.intervals
        if self.a.shape != (K, self.N):
            raise ValueError(f"bias a must be (K={K}, N={self.N}), got {self.a.shape}")
        for name, p in operator.params.items():
            if p.shape[0] != K:
                raise ValueError(f"kernel parameter {name} has {p.shape[0]} intervals, expected K={K}")

    # -- parameters -------------------------------------------------------------
    @property
    def params(self):
        """All trainable arrays by name (live views: editing them edits the network)."""
        out = {"a": self.a}
        out.update(self.operator.params)
        out.update(self.head.params)
        return out

    _zeroed, _untouched = None, set()

    def zero_grad(self):
        # np.zeros gets lazily zeroed pages (calloc); zeros_like would memset the whole buffer
        return {k: np.zeros(v.shape) for k, v in self.params.items()}

    # -- controlled-system protocol -------------------------------------------
    def linearise(self, f, k):
        P = self.operator.raw(f, k)
        F = np.empty_like(P)
        U = np.empty_like(P)
        act.pre_activation(self.a[k], P, self.h, self.code, F, U)
        return F, (f, U)

    def rhs(self, f, k):
        return self.linearise(f, k)[0]

    def jvp(self, lin, k, v):
        _, U = lin
        out = np.empty_like(U)
        act.tangent(U, self.operator.raw(v, k), self.h, self.code, out)
        return out

    def vjp(self, lin, k, w, grad):
        f, U = lin
        ubar = np.empty_like(U)
        act.backprop(U, w, self.code, ubar)
        if grad is not None:
            grad["a"][k] += ubar.sum(axis=0)
            # the first contribution to interval k of a zeroed buffer may overwrite it
            fresh = grad is self._zeroed and k in self._untouched
            self._untouched.discard(k)
            self.operator.add_grad(grad, k, ubar, f, -self.h, fresh)
        return (-self.h) * self.operator.raw_T(ubar, k)

    # -- quantities -----------------------------------------------------------
    def pre_activation(self, f, k):
        """u = a_k - B_k f."""
        return self.linearise(f, k)[1][1]

    def lyapunov(self, U):
        """Sample mean of int_Y Sigma(u) dy (Theorem 3.2)."""
        return float(self.activation.primitive(U).sum() * self.h / U.shape[0])

    def norm(self, f):
        """Sample mean of ||f||_{L^2(Y)}."""
        return float(np.mean(np.sqrt(self.h * np.sum(f * f, axis=1))))

    def regulariser(self):
        """R(a, b) with interval durations as time weights (0 when tikhonov = 0)."""
        if self.tikhonov == 0.0:
            return 0.0
        dur = np.array([self.schedule.interval_steps(k) * self.schedule.dt
                        for k in range(self.schedule.intervals)])
        quad = {"a": self.h, **self.operator.quadrature(self.h)}
        total, split = 0.0, 0.0
        distributed = getattr(self.operator, "distributed", ())
        for name, w in quad.items():
            p = self.params[name]
            part = w * np.sum(dur * np.sum(p.reshape(p.shape[0], -1) ** 2, axis=1))
            if name in distributed:
                split += part
            else:
                total += part
        # a row-distributed kernel (distributed.RowDistributedDense): its part summed over ranks
        return total + self.operator.allsum(split) if distributed else total

    def sqnorm(self, arrays):
        """Sum of squares of every entry of a dict of parameter-shaped arrays (gradients, steps):
        the parts of a distributed kernel are summed over ranks (every rank calls it then)."""
        distributed = getattr(self.operator, "distributed", ())
        total = sum(float(np.sum(np.square(v))) for k, v in arrays.items() if k not in distributed)
        if distributed:
            total += self.operator.allsum(sum(float(np.sum(np.square(v)))
                                              for k, v in arrays.items() if k in distributed))
        return total

    def _add_regulariser_grad(self, grad):
        if self.tikhonov == 0.0:
            return
        dur = np.array([self.schedule.interval_steps(k) * self.schedule.dt
                        for k in range(self.schedule.intervals)])
        quad = {"a": self.h, **self.operator.quadrature(self.h)}
        for name, w in quad.items():
            p = self.params[name]
            grad[name] += (self.tikhonov * w) * dur.reshape((-1,) + (1,) * (p.ndim - 1)) * p

    # -- solves ---------------------------------------------------------------
    def forward(self, f0, keep="none", on_state=None, progress=None):
        f0 = np.ascontiguousarray(f0, dtype=float)
        if f0.ndim != 2 or f0.shape[1] != self.N:
            raise ValueError(f"inputs must be (samples, {self.N}), got {f0.shape}")
        return solve_forward(self, f0, self.schedule, self.stepper, keep, on_state, progress)

    def _gemm_flops(self, f0):
        return 2.0 * np.shape(f0)[0] * self.N * self.N

    def loss(self, f0, target, samples=None, regularise=True):
        """(J, metrics). ``samples``/``regularise``: see :meth:`loss_and_gradient`."""
        with small_gemms(self._gemm_flops(f0)):
            fT, _ = self.forward(f0)
            J, _, metrics = self.head.loss(fT, target, samples=samples)
        return (J + 0.5 * self.tikhonov * self.regulariser() if regularise else J), metrics

    def loss_and_gradient(self, f0, target, keep="all", on_state=None, on_costate=None, progress=None,
                          samples=None, regularise=True):
        """(J, grad dict, metrics, fT): the exact gradient of the discrete loss.

        A share of a data-parallel evaluation (:mod:`pdenet.network.distributed`)
        passes the global sample count ``samples`` (the 1/S of the loss) and
        ``regularise=False`` (the Tikhonov term is added once, after the sum over ranks).
        """
        with small_gemms(self._gemm_flops(f0)):
            return self._loss_and_gradient(f0, target, keep, on_state, on_costate, progress, samples, regularise)

    def _loss_and_gradient(self, f0, target, keep, on_state, on_costate, progress, samples=None,
                           regularise=True):
        fT, tape = self.forward(f0, keep, on_state, progress)
        grad = self.zero_grad()
        self._zeroed, self._untouched = grad, set(range(self.schedule.intervals))
        J, lam, metrics = self.head.loss(fT, target, grad, samples=samples)
        try:
            solve_adjoint(self, tape, lam, grad, on_costate, progress)
        finally:
            self._zeroed, self._untouched = None, set()
        if regularise:
            J += 0.5 * self.tikhonov * self.regulariser()
            self._add_regulariser_grad(grad)
        return J, grad, metrics, fT


def default_schedule(steps, t_end, intervals=1):
    return Schedule(int(steps), float(t_end) / int(steps), int(intervals))
