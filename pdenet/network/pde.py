"""The width-depth network PDE  f_t = sigma(a - B_b f),  discretised.

Midpoint quadrature on the label mesh and a time stepper turn it into a
residual network of width N (cells) and depth L (steps); explicit Euler is
exactly z_{l+1} = z_l + tau sigma(a_l - B_l z_l) with B_l = h b_l.

:class:`NetworkPDE` implements the controlled-system protocol of
:mod:`solvers.protocol` and computes the loss and its exact gradient (the
discrete adjoint of the chosen stepper) with respect to every parameter:
``a`` (K, N), the kernel parameters, and the head's ``W``, ``mu``, into a
:class:`Gradient` buffer that the caller owns (``net.zero_grad()`` makes one).
The discrete co-state lambda_n = dJ/df_n relates to the paper's r by
r_n = S lambda_n / h for the identity-head L2 loss (r(T) = f(T) - target).
"""
from typing import Iterable, Mapping, MutableMapping, Optional

import numpy as np

from solvers import Schedule, solve_adjoint, solve_forward

from . import activations as act
from .blas import small_gemms
from .objective import add_tikhonov_gradient, tikhonov


class Gradient(dict):
    """dJ/dtheta of a :class:`NetworkPDE`: parameter name -> array shaped like the parameter.

    A dict (the optimisers of :mod:`solvers.optim` read ``grad[name]``) with named views of
    its parts: :attr:`a`, :attr:`kernel` (the operator's parameters, e.g. ``b``),
    :attr:`head` (``W``, ``mu``), and :attr:`f0` = dJ/df_0, the co-state at the inputs
    (set by :meth:`NetworkPDE.loss_and_gradient`; not a parameter, so not an entry).

    The caller owns the buffer: it makes it (:meth:`NetworkPDE.zero_grad`) or re-zeroes it
    (:meth:`zero`) and hands it to ``vjp``/``solve_adjoint``, which *add* into it. The buffer
    records which control intervals of the kernel gradient still hold the zeros it was
    made with, so that the first contribution to such an interval may overwrite instead of
    add (:meth:`claim`; this saves a pass over K N^2 entries of a dense kernel). Whoever
    adds into the kernel arrays other than through ``vjp`` calls :meth:`written` first.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], intervals: int, kernel: Iterable[str] = (),
                 head: Iterable[str] = ()) -> None:
        super().__init__(arrays)
        self.intervals = int(intervals)
        self.kernel_names, self.head_names = tuple(kernel), tuple(head)
        self.f0 = None
        self._zero = set(range(self.intervals))

    @property
    def a(self) -> np.ndarray:
        return self["a"]

    @property
    def kernel(self) -> dict[str, np.ndarray]:
        return {n: self[n] for n in self.kernel_names}

    @property
    def head(self) -> dict[str, np.ndarray]:
        return {n: self[n] for n in self.head_names}

    def zero(self) -> "Gradient":
        """Set every entry to 0 (the buffer is reused); returns the buffer."""
        for v in self.values():
            v.fill(0.0)
        self.f0 = None
        self._zero = set(range(self.intervals))
        return self

    def claim(self, k: int) -> bool:
        """True the first time it is asked for an interval ``k`` whose kernel gradient still
        holds zeros (the caller then overwrites it); False afterwards."""
        if k in self._zero:
            self._zero.discard(k)
            return True
        return False

    def written(self) -> None:
        """Say that the kernel arrays were added into outside ``vjp`` (no interval is zero)."""
        self._zero.clear()


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

    def zero_grad(self) -> Gradient:
        """A new zeroed :class:`Gradient` buffer for this network's parameters."""
        # np.zeros gets lazily zeroed pages (calloc); zeros_like would memset the whole buffer
        return Gradient({k: np.zeros(v.shape) for k, v in self.params.items()}, self.schedule.intervals,
                        self.operator.params, self.head.params)

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

    def vjp(self, lin, k: int, w: np.ndarray, grad: Optional[MutableMapping[str, np.ndarray]]) -> np.ndarray:
        f, U = lin
        ubar = np.empty_like(U)
        act.backprop(U, w, self.code, ubar)
        if grad is not None:
            grad["a"][k] += ubar.sum(axis=0)
            # the first contribution to interval k of a zeroed buffer may overwrite it
            fresh = isinstance(grad, Gradient) and grad.claim(k)
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
        """R(a, b) (:func:`.objective.tikhonov`)."""
        return tikhonov(self)

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
        """grad += the gradient of (lambda/2) R (:func:`.objective.add_tikhonov_gradient`)."""
        add_tikhonov_gradient(self, grad)

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
        J, lam, metrics = self.head.loss(fT, target, grad, samples=samples)
        grad.f0 = solve_adjoint(self, tape, lam, grad, on_costate, progress)
        if regularise:
            J += 0.5 * self.tikhonov * self.regulariser()
            self._add_regulariser_grad(grad)
        return J, grad, metrics, fT


def default_schedule(steps, t_end, intervals=1):
    return Schedule(int(steps), float(t_end) / int(steps), int(intervals))
