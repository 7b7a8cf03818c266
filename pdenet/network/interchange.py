"""PyTorch interchange of the discrete network (torch stays optional: imported on call).

:func:`to_torch` turns a network -- a :class:`~pdenet.network.pde.NetworkPDE`, or a network run's
:class:`~pdenet.io.Result` (``pdenet.open("out.h5")``) -- into a ``torch.nn.Module``
(:class:`PdenetResNet`, float64) that computes exactly the discrete network pdenet solves: the
explicit Runge-Kutta steps of the case's stepper (euler = the ResNet
z <- z + tau sigma(a_k - h B_k z); heun and rk4 with their tableaux from
:mod:`solvers.steppers`), the output layer and the loss of :mod:`~pdenet.network.heads`, and the
Tikhonov term. Its loss and its autograd gradients agree with pdenet's loss and exact discrete
adjoint to round-off (``tests/test_torch_interchange.py``: 1e-12). Implicit steppers (beuler,
cn, theta) are refused: their Newton solves are not a fixed composition of layers.

:func:`from_torch` brings a PyTorch residual network of the matching form onto a label mesh as a
:class:`~pdenet.network.pde.NetworkPDE`, ready for pdenet's tools (``loss_and_gradient`` and
its co-state, :mod:`pdenet.network.analysis`: spectra, steady states, Theorem 3.4, the Lyapunov
functional): a :class:`PdenetResNet` (from :func:`to_torch` or built by hand), or a
``torch.nn.Sequential`` of :class:`ResidualBlock` (z + tau * sigma(linear(z)), one per layer:
a = linear.bias, B = -linear.weight / h) optionally followed by a ``torch.nn.Linear`` output
layer (the ``classes`` head: W = weight / h, mu = bias).

Only dense kernels are converted (low-rank and convolution kernels: build the dense matrix with
``operator.matrix(k, h)`` first).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "arctan")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("pdenet.network.to_torch / from_torch need PyTorch (pip install torch)") from None
    return torch


def _sigma(torch: Any, name: str) -> Any:
    F = torch.nn.functional
    return {"identity": lambda u: u, "relu": torch.relu, "leaky_relu": lambda u: F.leaky_relu(u, 0.1),
            "elu": F.elu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "arctan": torch.atan}[name]


@lru_cache(maxsize=None)
def _module_class() -> Any:
    torch = _torch()

    class PdenetResNet(torch.nn.Module):
        """The discrete network as a PyTorch module (float64). ``forward(f0)`` is f(T) for
        inputs f0 of shape (S, N); ``output(f0)`` the output layer O_T; ``loss(f0, target)``
        pdenet's loss J (with the Tikhonov term when ``tikhonov`` > 0). Parameters: ``a`` (K, N),
        ``b`` (K, N, N) and, for ``field``/``classes`` heads, ``W``, ``mu``."""

        def __init__(self, a: Any, b: Any, *, h: float, steps: int, dt: float, stepper: str = "euler",
                     activation: str = "tanh", head: str = "identity", loss: str = "l2",
                     transform: str = "none", W: Any = None, mu: Any = None, tikhonov: float = 0.0,
                     lower: Any = (0.0,), upper: Any = (1.0,), cells: Any = None) -> None:
            super().__init__()
            from solvers.schedule import Schedule
            from solvers.steppers import make_stepper

            def param(x: Any) -> Any:
                return torch.nn.Parameter(torch.as_tensor(np.asarray(x, dtype=float)).clone())

            self.a, self.b = param(a), param(b)
            K, N = self.a.shape
            if tuple(self.b.shape) != (K, N, N):
                raise ValueError(f"b must be (K={K}, N={N}, N), got {tuple(self.b.shape)}")
            self.W = param(W) if W is not None else None
            self.mu = param(mu) if mu is not None else None
            rk = make_stepper(stepper)
            if getattr(rk, "implicit", True):
                raise ValueError(f"stepper {stepper!r} is implicit: its Newton solves are not a fixed "
                                 "composition of layers; to_torch converts euler, heun and rk4")
            if activation not in ACTIVATIONS:
                raise ValueError(f"unknown activation {activation!r}")
            self.tableau = (rk.a, rk.b)
            self.h, self.dt, self.steps, self.K = float(h), float(dt), int(steps), int(K)
            self.schedule = Schedule(self.steps, self.dt, self.K)
            self.stepper, self.activation, self.head = stepper, activation, head
            self.loss_name, self.transform, self.tikhonov = loss, transform, float(tikhonov)
            self.lower, self.upper = list(map(float, lower)), list(map(float, upper))
            self.cells = list(cells) if cells is not None else [N]
            self._sigma = _sigma(torch, activation)

        def rhs(self, f: Any, k: int) -> Any:
            """sigma(a_k - h f B_k^T): the network PDE's right-hand side on the label mesh."""
            return self._sigma(self.a[k] - self.h * (f @ self.b[k].T))

        def forward(self, f0: Any) -> Any:
            A, Bw = self.tableau
            f = torch.as_tensor(f0, dtype=torch.float64).reshape(-1, self.a.shape[1])
            for n in range(self.steps):
                k = self.schedule.interval(n)
                stages: list[Any] = []
                for i in range(len(Bw)):
                    y = f
                    for j, aij in enumerate(A[i]):
                        if aij != 0.0:
                            y = y + (self.dt * aij) * stages[j]
                    stages.append(self.rhs(y, k))
                for i, bi in enumerate(Bw):
                    if bi != 0.0:
                        f = f + (self.dt * bi) * stages[i]
            return f

        def output(self, f0: Any) -> Any:
            fT = self(f0)
            if self.head == "identity":
                return fT
            return self.h * (fT @ self.W.T) + self.mu

        def regulariser(self) -> Any:
            """R(a, b): squared parameters with the quadrature weights (a: h, b: h^2) and the
            interval durations (pdenet.network.objective.tikhonov)."""
            dur = torch.tensor([self.schedule.interval_steps(k) * self.dt for k in range(self.K)],
                               dtype=torch.float64)
            return (self.h * torch.sum(dur * torch.sum(self.a ** 2, dim=1))
                    + self.h * self.h * torch.sum(dur * torch.sum(self.b.reshape(self.K, -1) ** 2, dim=1)))

        def loss(self, f0: Any, target: Any) -> Any:
            """pdenet's J: the head's loss averaged over the samples, + (lambda/2) R(a, b)."""
            O = self.output(f0)
            S = O.shape[0]
            weight = 1.0 if self.head == "classes" else self.h
            if self.loss_name == "l2":
                C = torch.sigmoid(O) if self.transform == "logistic" else O
                J = 0.5 * weight * torch.sum((C - torch.as_tensor(target, dtype=torch.float64)) ** 2) / S
            elif self.loss_name == "logistic":
                t = torch.as_tensor(target, dtype=torch.float64)
                J = weight * torch.sum(torch.logaddexp(torch.zeros_like(O), O) - t * O) / S
            else:
                labels = torch.as_tensor(np.asarray(target), dtype=torch.long)
                J = torch.nn.functional.cross_entropy(O, labels, reduction="sum") / S
            if self.tikhonov:
                J = J + 0.5 * self.tikhonov * self.regulariser()
            return J

    return PdenetResNet


@lru_cache(maxsize=None)
def _residual_block_class() -> Any:
    torch = _torch()

    class ResidualBlock(torch.nn.Module):
        """z + tau * sigma(linear(z)): the residual layer :func:`from_torch` reads."""

        def __init__(self, linear: Any, tau: float, activation: str = "tanh") -> None:
            super().__init__()
            self.linear, self.tau, self.activation = linear, float(tau), activation
            self._sigma = _sigma(torch, activation)

        def forward(self, z: Any) -> Any:
            return z + self.tau * self._sigma(self.linear(z))

    return ResidualBlock


def __getattr__(name: str) -> Any:   # the module classes, built on first use (torch optional)
    if name == "PdenetResNet":
        return _module_class()
    if name == "ResidualBlock":
        return _residual_block_class()
    raise AttributeError(name)


def _from_result(result: Any) -> Any:
    import tomllib

    from ..case import build_case

    attrs = result.attrs
    if attrs.get("model") != "network":
        raise ValueError(f"to_torch converts results of the network model, not {attrs.get('model')!r}")
    if attrs.get("kernel", "dense") != "dense" or "b" not in result.controls:
        raise ValueError("to_torch converts dense kernels only (this run's kernel is "
                         f"{attrs.get('kernel')!r})")
    case = build_case(tomllib.loads(attrs["case"]), attrs.get("case_source", "<file>"), ".")
    c = result.controls
    mesh = result.mesh
    return _module_class()(
        c["a"], c["b"], h=mesh.cell_volume, steps=int(attrs["steps"]), dt=float(attrs["dt"]),
        stepper=str(attrs["stepper"]), activation=str(attrs["activation"]), head=case["model.output.kind"],
        loss=case["model.output.loss"], transform=case["model.output.transform"], W=c.get("W"), mu=c.get("mu"),
        tikhonov=case["model.tikhonov"], lower=mesh.lower, upper=mesh.upper, cells=mesh.cells)


def to_torch(source: Any) -> Any:
    """A :class:`PdenetResNet` (``torch.nn.Module``, float64) computing the discrete network of
    ``source``: a :class:`~pdenet.network.pde.NetworkPDE` or a network run's
    :class:`~pdenet.io.Result` (its trained controls). With a result, the module's
    ``loss(result.analysis["inputs"], result.analysis["targets"])`` is the run's ``loss``."""
    from .operators import DenseOperator
    from .pde import NetworkPDE

    if not isinstance(source, NetworkPDE):
        return _from_result(source)
    net = source
    if not isinstance(net.operator, DenseOperator):
        raise ValueError("to_torch converts dense kernels only; build a DenseOperator from "
                         "operator.matrix(k, h) first")
    mesh, head = net.mesh, net.head
    return _module_class()(
        net.a, net.operator.b, h=net.h, steps=net.schedule.steps, dt=net.schedule.dt, stepper=net.stepper.name,
        activation=net.activation.name, head=head.kind, loss=head.loss_name, transform=head.transform,
        W=head.W, mu=head.mu, tikhonov=net.tikhonov, lower=mesh.lower, upper=mesh.upper, cells=mesh.cells)


def from_torch(module: Any, lower: Any = None, upper: Any = None, t_end: float | None = None) -> Any:
    """A :class:`~pdenet.network.pde.NetworkPDE` on a label mesh from a PyTorch network of the
    matching form (module docstring). ``lower``/``upper``: the label box Y (default [0, 1] per
    dimension, or the module's own); ``t_end``: the depth T (default: tau times the layers, or
    the module's). Parameters are copied (float64)."""
    torch = _torch()
    from solvers.schedule import Schedule
    from solvers.steppers import make_stepper

    from ..mesh import Mesh
    from .heads import Head
    from .operators import DenseOperator
    from .pde import NetworkPDE

    def arr(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy().astype(float).copy()

    Resnet = _module_class()
    if isinstance(module, Resnet) or (hasattr(module, "tableau") and hasattr(module, "schedule")):
        m = module
        lo = list(lower) if lower is not None else m.lower
        hi = list(upper) if upper is not None else m.upper
        mesh = Mesh(lo, hi, m.cells)
        W = arr(m.W) if m.W is not None else None
        mu = arr(m.mu) if m.mu is not None else None
        head = Head(m.head, m.loss_name, mesh.cell_volume, mesh.size, W, mu, transform=m.transform)
        dt = m.dt if t_end is None else t_end / m.steps
        return NetworkPDE(mesh, m.activation, arr(m.a), DenseOperator(arr(m.b)), head,
                          Schedule(m.steps, dt, m.K), make_stepper(m.stepper), tikhonov=m.tikhonov)
    if not isinstance(module, torch.nn.Sequential):
        raise ValueError("from_torch reads a PdenetResNet or a torch.nn.Sequential of ResidualBlock layers "
                         f"(optionally ending in a Linear output layer), not {type(module).__name__}")
    layers = list(module)
    out = layers.pop() if layers and isinstance(layers[-1], torch.nn.Linear) else None
    Block = _residual_block_class()
    if not layers or not all(isinstance(b, Block) or (hasattr(b, "linear") and hasattr(b, "tau"))
                             for b in layers):
        raise ValueError("from_torch: every layer but an optional last Linear must be a ResidualBlock "
                         "(z + tau * sigma(linear(z)))")
    taus = {b.tau for b in layers}
    acts = {b.activation for b in layers}
    if len(taus) != 1 or len(acts) != 1:
        raise ValueError("from_torch: the residual layers must share one tau and one activation")
    N = layers[0].linear.in_features
    if any(b.linear.in_features != N or b.linear.out_features != N for b in layers):
        raise ValueError(f"from_torch: every residual layer must map R^{N} to R^{N}")
    lo = list(lower) if lower is not None else [0.0]
    hi = list(upper) if upper is not None else [1.0]
    if len(lo) != 1 or len(hi) != 1:
        raise ValueError("from_torch: a Sequential's width is a 1-D label mesh (give lower=[l], upper=[u])")
    mesh = Mesh(lo, hi, [N])
    h = mesh.cell_volume
    tau = taus.pop()
    L = len(layers)
    a = np.stack([arr(b.linear.bias) if b.linear.bias is not None else np.zeros(N) for b in layers])
    B = np.stack([-arr(b.linear.weight) / h for b in layers])
    if out is None:
        head = Head("identity", "l2", h, N)
    else:
        head = Head("classes", "softmax", h, N, arr(out.weight) / h,
                    arr(out.bias) if out.bias is not None else np.zeros(out.out_features))
    dt = tau if t_end is None else t_end / L
    return NetworkPDE(mesh, acts.pop(), a, DenseOperator(B), head, Schedule(L, dt, L), make_stepper("euler"))
