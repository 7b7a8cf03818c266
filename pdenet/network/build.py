"""Case file -> the parts of a :class:`~pdenet.network.pde.NetworkPDE` and its data.

What :class:`~pdenet.network.model.NetworkModel` builds while it is constructed (the
validation phase): the bias ``a`` (K, N), the kernel operator, the output head, and the
training/test data on the label mesh. Each function reads the validated case and the label
mesh, evaluates the case's expressions there, and reports a bad value as a one-line
:class:`~pdenet.errors.CaseError` naming its key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..expr import coordinate_env, coordinate_names
from .data import SOURCES, DataError, load_digits, load_file, load_mnist1d
from .heads import Head
from .operators import ConvolutionOperator, DenseOperator, LowRankOperator

__all__ = ["Data", "bias", "operator", "head", "data", "check_kernel_expression"]


def _names(prefix: str, mesh) -> tuple:
    return coordinate_names(prefix, mesh.ndim)


def _rng(case, key: str) -> np.random.Generator:
    return np.random.default_rng(case[key])


# -- the controls --------------------------------------------------------------------------
def bias(case, mesh, t_mid: np.ndarray) -> np.ndarray:
    """a (K, N): ``model.bias`` sampled at cell centres and interval midpoints ``t_mid``."""
    K, N = len(t_mid), mesh.size
    init = case["model.bias.init"]
    if init == "zero":
        return np.zeros((K, N))
    if init == "random":
        return case["model.bias.scale"] * _rng(case, "model.bias.seed").standard_normal((K, N))
    expr = case.expression("model.bias.expression", _names("y", mesh) + ("t",))
    env = coordinate_env("y", mesh.centres())
    return np.stack([expr(shape=mesh.shape, t=t, **env).ravel() for t in t_mid])


def check_kernel_expression(case, mesh) -> None:
    """Parse the dense kernel's expression (a row-distributed kernel is built later, per rank)."""
    if case["model.kernel.init"] == "expression":
        case.expression("model.kernel.expression", _names("y", mesh) + _names("z", mesh) + ("t",))


def operator(case, mesh, t_mid: np.ndarray, comm: Any = None):
    """The kernel operator; with ``comm`` (distribute = "rows") the rank's rows of the same b."""
    c = case
    K, N, kind = len(t_mid), mesh.size, c["model.kernel.kind"]
    init, scale = c["model.kernel.init"], c["model.kernel.scale"]
    rng = _rng(c, "model.kernel.seed")
    if kind == "dense":
        from .distributed import RowDistributedDense, block, normal_rows

        rows = slice(0, N) if comm is None else block(N, comm.Get_rank(), comm.Get_size())
        n = rows.stop - rows.start

        def make(b):
            return DenseOperator(b) if comm is None else RowDistributedDense(b, N, comm)
        if init == "zero":
            return make(np.zeros((K, n, N)))
        if init == "random":  # entries of B = h b with standard deviation scale / sqrt(N)
            draws = rng.standard_normal((K, N, N)) if comm is None else normal_rows(rng, K, N, rows)
            draws *= scale                                # in place: no K N^2 temporaries
            draws /= mesh.cell_volume * np.sqrt(N)
            return make(draws)
        expr = c.expression("model.kernel.expression", _names("y", mesh) + _names("z", mesh) + ("t",))
        yy = [y.reshape(-1, 1)[rows] for y in mesh.centres()]   # (n, 1): the row variable y
        zz = [y.reshape(1, -1) for y in mesh.centres()]         # (1, N): the column variable z
        env = {**coordinate_env("y", yy), **coordinate_env("z", zz)}
        return make(np.stack([expr(shape=(n, N), t=t, **env) for t in t_mid]))
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
        names = _names("y", mesh) + ("t",)
        env = coordinate_env("y", mesh.centres())

        def sample(key, exprs):
            out = np.empty((K, len(exprs), N))
            for r, text in enumerate(exprs):
                e = c.expression(key, names, text=text)
                for k, t in enumerate(t_mid):
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
    expr = c.expression("model.kernel.expression", _names("d", mesh) + ("t",))
    offsets = [np.arange(-(n - 1), n) * h for n, h in zip(mesh.cells, mesh.spacing)]
    env = coordinate_env("d", np.meshgrid(*offsets, indexing="ij"))
    return ConvolutionOperator(np.stack([expr(shape=shape, t=t, **env) for t in t_mid]), mesh.cells)


def head(case, mesh) -> Head:
    """The output layer O_T of ``model.output`` (W seeded, mu = 0)."""
    c, N, h = case, mesh.size, mesh.cell_volume
    kind, loss = c["model.output.kind"], c["model.output.loss"]
    if kind == "identity":
        return Head("identity", loss, h, N, transform=c["model.output.transform"])
    M = N if kind == "field" else c["model.output.classes"]
    if c["model.output.init"] == "zero":
        W = np.zeros((M, N))
    else:
        W = (_rng(c, "model.output.seed").standard_normal((M, N)) * c["model.output.scale"]
             / (h * np.sqrt(N)))
    return Head(kind, loss, h, N, W, np.zeros(M), transform=c["model.output.transform"])


# -- the data --------------------------------------------------------------------------------
@dataclass
class Data:
    """Training inputs (S, N) and targets on the label mesh, held-out (inputs, targets) or None,
    and a one-line description of a loaded data set (None for case-file data)."""

    inputs: np.ndarray
    targets: np.ndarray
    test: Optional[tuple] = None
    description: Optional[str] = None


def data(case, mesh) -> Data:
    """``[data]``: inputs and targets from expressions, a seeded random source, or a data set."""
    c = case
    source = c["data.source"]
    if source in SOURCES:
        return _dataset(c, mesh, source)
    if source == "random":
        S = c["data.samples"]
        if S is None:
            raise c.error("random data needs the number of samples", key="data.samples")
        rng = _rng(c, "data.seed")
        inputs = c["data.scale"] * rng.standard_normal((S, mesh.size))
    else:
        sampled = _sample_exprs(c, mesh, "data.inputs", required=True)
        assert sampled is not None                  # required: an error otherwise
        inputs, S = sampled, sampled.shape[0]
    # targets
    if c["model.output.kind"] == "classes":
        labels = c["data.labels"]
        if labels is None:
            if source != "random":
                raise c.error("classification needs integer labels", key="data.labels")
            labels = _rng(c, "data.seed").integers(0, max(c["model.output.classes"], 2), S)
        labels = np.atleast_1d(np.asarray(labels, dtype=int))
        if labels.size == 1:
            labels = np.repeat(labels, S)
        if labels.size != S:
            raise c.error(f"{labels.size} labels for {S} samples", key="data.labels")
        return Data(inputs, class_targets(c, labels, "data.labels"))
    targets = _sample_exprs(c, mesh, "data.targets", required=False, samples=S)
    if targets is None:
        if source != "random":
            raise c.error("a field output needs target expressions", key="data.targets")
        targets = np.zeros((S, mesh.size))
    return Data(inputs, targets)


def class_targets(case, labels: np.ndarray, key: str) -> np.ndarray:
    """Integer labels -> what the loss wants: labels (softmax), 0/1 column (logistic, M = 1), one-hot."""
    c = case
    M, loss = c["model.output.classes"], c["model.output.loss"]
    if loss == "softmax":
        if labels.size and (labels.min() < 0 or labels.max() >= M):
            raise c.error(f"labels must lie in 0..{M - 1} (model.output.classes = {M})", key=key)
        return labels
    if loss == "logistic" and M == 1:
        return labels.reshape(-1, 1).astype(float)
    if labels.size and labels.max() >= M:
        raise c.error(f"labels must lie in 0..{M - 1} (model.output.classes = {M})", key=key)
    onehot = np.zeros((labels.size, M))
    onehot[np.arange(labels.size), labels] = 1.0
    return onehot


def _dataset(case, mesh, source: str) -> Data:
    """digits / mnist1d / file: load on the data grid, prolong onto the label mesh, split."""
    c = case
    if c["model.output.kind"] != "classes":
        raise c.error(f"source {source!r} has class labels: use model.output.kind = 'classes'",
                      key="model.output.kind")
    seed, limit = c["data.seed"], c["data.limit"]
    try:
        if source == "digits":
            d = load_digits(c["data.test_fraction"], seed, limit)
        elif source == "mnist1d":
            d = load_mnist1d(c["data.samples"] or 5000, seed, limit)
        else:
            d = load_file(c.resolve_path(c["data.path"]), c["data.test_fraction"], seed, limit)
    except DataError as exc:
        raise c.error(str(exc), key="data.source" if source != "file" else "data.path") from None
    if len(d.labels) == 0:
        raise c.error(f"leaves no training samples ({source} data, data.limit = {limit})",
                      key="data.test_fraction")
    if len(d.cells) != mesh.ndim:
        raise c.error(f"the {source} data live on a {len(d.cells)}-D grid {d.cells}; the label mesh is "
                      f"{mesh.ndim}-D", key="mesh.cells")
    grid = type(mesh)(mesh.lower, mesh.upper, list(d.cells), mesh.boundary)
    try:
        grid.refinement_factor(mesh)
    except ValueError:
        raise c.error(f"the label mesh {tuple(mesh.cells)} must be an integer refinement of the data grid "
                      f"{d.cells}", key="mesh.cells") from None

    def on_mesh(x):
        return np.ascontiguousarray(grid.prolong(x, mesh).reshape(x.shape[0], mesh.size))
    # test_fraction = 0 (or a file without a test split): no held-out set, as for the other sources
    test = (on_mesh(d.test_inputs), class_targets(c, d.test_labels, "data.source")) if len(d.test_labels) else None
    return Data(on_mesh(d.inputs), class_targets(c, d.labels, "data.source"), test, d.description)


def _sample_exprs(case, mesh, key: str, required: bool, samples: Optional[int] = None) -> Optional[np.ndarray]:
    c = case
    exprs = c[key]
    if exprs is None:
        if required:
            raise c.error("is required for source = 'expression'", key=key)
        return None
    names = _names("y", mesh) + ("s",)
    env = coordinate_env("y", mesh.centres())
    S = samples or (c["data.samples"] if len(exprs) == 1 and c["data.samples"] else len(exprs))
    if len(exprs) not in (1, S):
        raise c.error(f"has {len(exprs)} expressions for {S} samples", key=key)
    out = np.empty((S, mesh.size))
    for s in range(S):
        e = c.expression(key, names, text=exprs[s if len(exprs) == S else 0])
        out[s] = e(shape=mesh.shape, s=float(s), **env).ravel()
    return out
