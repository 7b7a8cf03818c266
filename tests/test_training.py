"""Training from case files: [train] methods, /train output, data sources (digits, mnist1d, file)."""
import h5py
import numpy as np
import pytest

import pdenet
from conftest import case_path, run_cli
from pdenet.network.data import load_digits, split
import reference

DIGITS = case_path("digits_adam.toml")


def test_toy_msa_cycles_and_emsa_converges_from_the_case_file(tmp_path):
    r = pdenet.run(case_path("toy_msa.toml"), write=False)
    loss = r.train["loss"]
    # MSA: bang-bang a = -1 / +1 alternately from the second iterate on, losses 1.125 / 0.125
    toy = reference.ref("training", "toy_msa_losses")
    plus, minus = toy.value
    np.testing.assert_allclose(loss[2::2], minus, rtol=toy.tolerance)
    np.testing.assert_allclose(loss[3::2], plus, rtol=toy.tolerance)
    assert np.all(np.abs(r.controls["a"]) == 1.0)
    e = pdenet.run(case_path("toy_msa.toml"), overrides=["train.method=emsa"], write=False)
    assert e.train["loss"][-1] < 1e-24
    assert r.attrs["train_method"] == "msa" and e.attrs["train_method"] == "emsa"


def test_digits_split_is_seeded_and_disjoint():
    a, b = load_digits(0.2, seed=3), load_digits(0.2, seed=3)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert a.inputs.shape[1:] == (8, 8) and a.classes == 10
    assert len(a.labels) + len(a.test_labels) == 1797 and len(a.test_labels) == 359
    assert a.inputs.min() >= 0.0 and a.inputs.max() <= 1.0
    c = load_digits(0.2, seed=4)
    assert not np.array_equal(a.test_labels, c.test_labels)
    # the split is a partition: no image in both halves
    x = np.arange(10.0)[:, None]
    tr, _, te, _ = split(x, np.arange(10), 0.3, 0)
    assert sorted(np.concatenate([tr, te]).ravel()) == list(range(10)) and len(te) == 3


def test_digits_prolonged_onto_a_finer_label_mesh_gives_the_same_network():
    """Theorem 2.2 consistency: piecewise-constant data and zero-initialised controls on 16^2
    reproduce the 8^2 network exactly (the fine problem contains the coarse one)."""
    common = ["data.limit=60", "train.method=none"]
    coarse = pdenet.run(DIGITS, overrides=common, write=False)
    fine = pdenet.run(DIGITS, overrides=common + ["mesh.cells=[16, 16]"], write=False)
    np.testing.assert_array_equal(fine.analysis["inputs"][:, ::2, ::2], coarse.analysis["inputs"])
    np.testing.assert_array_equal(fine.analysis["inputs"][:, 1::2, 1::2], coarse.analysis["inputs"])
    assert fine.attrs["loss"] == pytest.approx(coarse.attrs["loss"], rel=1e-13)
    # the gradient w.r.t. the function values a carries the quadrature weight: the four fine
    # entries of a coarse cell add up to the coarse entry
    ga = fine.gradients["a"].reshape(-1, 8, 2, 8, 2).sum(axis=(2, 4)).reshape(-1, 64)
    np.testing.assert_allclose(ga, coarse.gradients["a"], rtol=1e-10, atol=1e-15)


def test_adam_on_digits_reaches_97_percent_held_out():
    r = pdenet.run(DIGITS, write=False)
    t = r.train
    assert t["loss"][-1] < 0.05 * t["loss"][0]
    target = reference.value("training", "digits_adam_test_accuracy")    # 0.97
    assert r.attrs["test_accuracy"] >= target, r.attrs["test_accuracy"]
    ev = t["test_accuracy"][~np.isnan(t["test_accuracy"])]
    assert len(ev) == 300 // 5 + 1           # eval_every = 5, iterations 0..300


def test_pam_on_digits_keeps_the_sufficient_decrease():
    r = pdenet.run(case_path("digits_pam.toml"), overrides=["data.limit=300", "train.iterations=4",
                                                             "train.inner_maxiter=10"], write=False)
    t = r.train
    assert np.all(t["decrease_ok"] == 1.0)
    assert np.all(t["slack"] >= -1e-12 * (np.abs(t["loss"]) + 1))
    assert np.all(np.diff(t["loss"]) < 0)


def test_minibatch_adam_and_gd_run_and_record_full_loss(tmp_path):
    out = tmp_path / "mb.h5"
    proc = run_cli("run", DIGITS, "-o", str(out), "--quiet", "--set", "data.limit=200", "--set",
                   "train.iterations=6", "--set", "train.batch_size=50", "--set", "train.eval_every=3")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as h:
        full = h["train/full_loss"][:]
        assert np.isfinite(full[[0, 3, 6]]).all() and np.isnan(full[[1, 2, 4, 5]]).all()
        assert h.attrs["final_test_accuracy"] > 0.1


def test_divergence_is_an_error_with_the_history_kept(tmp_path):
    out = tmp_path / "div.h5"
    proc = run_cli("run", case_path("network_width.toml"), "-o", str(out), "--quiet", "--set",
                   "train.method=gd", "--set", "train.lr=1e8", "--set", "train.iterations=50", "--set",
                   "model.activation=identity")
    assert proc.returncode == 1
    assert "loss became" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()  # a failed run keeps its file as div.failed.h5 (issue 12)
    with h5py.File(tmp_path / "div.failed.h5") as h:
        assert h.attrs["status"] == "failed"
        loss = h["train/loss"][:]
        assert np.isfinite(loss[0]) and loss[-1] > 1e10 * loss[0] and len(loss) < 51


def test_file_source_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 4))
    y = (x[:, :2].sum(1) > x[:, 2:].sum(1)).astype(int)
    data = tmp_path / "data.h5"
    with h5py.File(data, "w") as h:
        h["inputs"], h["labels"] = x, y
    case = tmp_path / "c.toml"
    case.write_text(f"""
[case]
name = "filecase"
model = "network"
[mesh]
lower = [0.0]
upper = [1.0]
cells = [8]
[time]
t_end = 1.0
steps = 2
[model.output]
kind = "classes"
classes = 2
loss = "softmax"
[data]
source = "file"
path = "data.h5"
test_fraction = 0.25
[train]
method = "adam"
iterations = 40
lr = 0.1
""")
    r = pdenet.run(str(case), write=False)
    assert r.analysis["inputs"].shape == (30, 8)
    train_rows = np.random.default_rng(0).permutation(40)[10:]      # data.seed = 0, 10 held out
    np.testing.assert_array_equal(r.analysis["inputs"][:, ::2], x[train_rows])
    assert r.train["loss"][-1] < r.train["loss"][0]
    with h5py.File(data, "w") as h:
        h["inputs"] = x
    for cmd in (["validate", str(case)], ["run", str(case), "--quiet", "-o", str(tmp_path / "o.h5")]):
        proc = run_cli(*cmd)           # validate builds the model, so it reads the data too
        assert proc.returncode == 2 and "missing dataset(s) labels" in proc.stderr and "data.path" in proc.stderr
    proc = run_cli("run", str(case), "--quiet", "--set", "mesh.cells=[6]", "-o", str(tmp_path / "o.h5"))
    assert proc.returncode == 2


def test_bad_train_keys_are_input_errors():
    for bad, word in [("train.method=sgd", "not one of"), ("train.box_a=[1.0, -1.0]", "lower <= upper"),
                      ("train.tau=0", "positive")]:
        proc = run_cli("validate", DIGITS, "--set", bad)
        assert proc.returncode == 2 and word in proc.stderr, (bad, proc.stderr)
    proc = run_cli("validate", case_path("toy_msa.toml"), "--set", "time.stepper=rk4")
    assert proc.returncode == 2 and "euler" in proc.stderr


def test_mnist1d_generated_locally():
    pytest.importorskip("mnist1d")
    from pdenet.network.data import load_mnist1d
    d = load_mnist1d(samples=500, seed=1)
    state = np.random.get_state()[1][:4].copy()
    d2 = load_mnist1d(samples=500, seed=1)
    np.testing.assert_array_equal(d.inputs, d2.inputs)
    assert d.inputs.shape == (400, 40) and d.test_inputs.shape == (100, 40)
    assert set(np.unique(d.labels)) <= set(range(10))
    np.testing.assert_array_equal(np.random.get_state()[1][:4], state)   # global generator untouched


def test_converge_reports_the_headline_numbers_per_resolution():
    from pdenet.converge import converge, table
    study = converge(case_path("network_width.toml"), "mesh.cells", ["8", "16"])
    assert len(study["scalars"]["loss"]) == 2
    assert study["scalars"]["loss"][0] != study["scalars"]["loss"][1]
    assert "loss" in table(study).splitlines()[1]
