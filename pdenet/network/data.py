"""Labelled data sets for the network PDE, on their native label grids.

Each loader returns a :class:`DataSet`: inputs shaped (S, *cells) on the
unit box of the data's own grid (one cell per pixel / signal entry), integer
class labels (S,), and the held-out split. The network model prolongs the
inputs onto its label mesh when that mesh is an integer refinement of the
data grid (the width limit of Theorem 2.2), so every resolution sees the
same data.

Sources
-------
``digits``   scikit-learn's bundled 8x8 handwritten digits (1797 images, no
             download), pixel values scaled to [0, 1], Y = (0, 1)^2, row i of
             the image along y1 and column j along y2.
``mnist1d``  the MNIST-1D signals (length 40) generated locally by the
             ``mnist1d`` package (``make_dataset``: never its download path),
             Y = (0, 1).
``file``     an HDF5 file with datasets ``inputs`` (S, *cells) and
             ``labels`` (S,) integers, optionally ``test_inputs`` and
             ``test_labels`` (else the split below is applied).

The split: a seeded permutation puts ``test_fraction`` of the samples in the
test set (for ``mnist1d`` its own generator's split is kept).
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["DataSet", "SOURCES", "load_digits", "load_mnist1d", "load_file", "split"]


class DataError(ValueError):
    """A data source cannot be read; the message says why (and how to fix it)."""


@dataclass
class DataSet:
    inputs: np.ndarray          # (S, *cells)
    labels: np.ndarray          # (S,) int
    test_inputs: np.ndarray     # (S_test, *cells)
    test_labels: np.ndarray     # (S_test,)
    classes: int
    description: str

    @property
    def cells(self):
        return tuple(self.inputs.shape[1:])


def split(inputs, labels, test_fraction, seed):
    """Seeded permutation split into (train inputs, train labels, test inputs, test labels)."""
    S = labels.shape[0]
    order = np.random.default_rng(seed).permutation(S)
    n_test = int(round(test_fraction * S))
    test, train = order[:n_test], order[n_test:]
    return inputs[train], labels[train], inputs[test], labels[test]


def _limit(arrays, limit):
    return arrays if not limit else tuple(a[:limit] for a in arrays)


def load_digits(test_fraction=0.2, seed=0, limit=None):
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as exc:
        raise DataError("source 'digits' needs scikit-learn: pip install 'pdenet[data]'") from exc
    d = sk_digits()
    images = d.images.astype(float) / 16.0
    x, y, xt, yt = split(images, d.target.astype(int), test_fraction, seed)
    x, y = _limit((x, y), limit)
    return DataSet(x, y, xt, yt, 10, f"scikit-learn digits 8x8, {len(y)} train / {len(yt)} test, seed {seed}")


def load_mnist1d(samples=5000, seed=0, limit=None):
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise DataError("source 'mnist1d' needs the mnist1d package: pip install 'pdenet[data]'") from exc
    args = get_dataset_args()
    args.num_samples, args.seed = int(samples), int(seed)
    state = np.random.get_state()       # make_dataset seeds numpy's global generator
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    x, y = _limit((np.asarray(d["x"], float), np.asarray(d["y"], int)), limit)
    return DataSet(x, y, np.asarray(d["x_test"], float), np.asarray(d["y_test"], int), 10,
                   f"MNIST-1D generated locally ({args.num_samples} samples, seed {seed})")


def load_file(path, test_fraction=0.2, seed=0, limit=None):
    import h5py
    try:
        with h5py.File(path, "r") as h:
            missing = [k for k in ("inputs", "labels") if k not in h]
            if missing:
                raise DataError(f"{path}: missing dataset(s) {', '.join(missing)} (need inputs, labels)")
            x, y = np.asarray(h["inputs"], float), np.asarray(h["labels"])
            xt = np.asarray(h["test_inputs"], float) if "test_inputs" in h else None
            yt = np.asarray(h["test_labels"]) if "test_labels" in h else None
    except OSError as exc:
        raise DataError(f"{path}: cannot read HDF5 ({exc})") from exc
    if x.ndim < 2 or x.ndim > 4 or y.shape != (x.shape[0],):
        raise DataError(f"{path}: inputs must be (S, *cells) with 1-3 grid axes and labels (S,); "
                        f"got {x.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y)):
        raise DataError(f"{path}: labels must be integers")
    y = y.astype(int)
    if (xt is None) != (yt is None):
        raise DataError(f"{path}: give both test_inputs and test_labels or neither")
    if xt is None:
        x, y, xt, yt = split(x, y, test_fraction, seed)
    elif xt.shape[1:] != x.shape[1:] or yt.shape != (xt.shape[0],):
        raise DataError(f"{path}: test_inputs {xt.shape} / test_labels {yt.shape} do not match inputs {x.shape}")
    yt = yt.astype(int)
    if min(y.min(), yt.min()) < 0:
        raise DataError(f"{path}: labels must be >= 0")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(xt))):
        raise DataError(f"{path}: inputs contain NaN or inf")
    x, y = _limit((x, y), limit)
    return DataSet(x, y, xt, yt, int(max(y.max(), yt.max())) + 1, f"{path}: {len(y)} train / {len(yt)} test")


SOURCES = {"digits": load_digits, "mnist1d": load_mnist1d, "file": load_file}
