"""Issue 17, part 4: restart of a time integration (``pdenet run --resume OUT.h5``).

A run interrupted at a random save and resumed from its ``.interrupted.h5`` file gives the same
file as the uninterrupted run (the oracle), to round-off -- here exactly, since the resumed march
repeats the same arithmetic from the saved state; a finished run extended with a longer t_end
equals the longer run; models or cases whose state is not all saved refuse with one line.
"""
import os

import numpy as np
import pytest

import pdenet
from conftest import CASES, run_cli
from pdenet.errors import CaseError
from pdenet.io.sink import Sink
from pdenet.restart import resume
from pdenet.runner import Interrupted

HEAT = """
[case]
name = "heat_restart"
model = "heat"
[mesh]
lower = [0.0]
upper = [1.0]
cells = [48]
boundary = "dirichlet"
[model]
kappa = 0.5
initial = "sin(pi*x) + 0.3*sin(3*pi*x)"
source = "x*(1 - x)*cos(t)"
[time]
stepper = "{stepper}"
t_end = {t_end}
steps = {steps}
save_every = 1
[exact]
u = "0*x"
"""


class StopAt(Sink):
    """Ctrl-C at save ``k`` (after the file has it)."""

    def __init__(self, k):
        self.k, self.n = k, 0

    def save(self, t, fields, diagnostics):
        if self.n == self.k:
            raise KeyboardInterrupt
        self.n += 1


def same(a, b):
    np.testing.assert_array_equal(a.time, b.time)
    assert a.fields.keys() == b.fields.keys() and a.diagnostics.keys() == b.diagnostics.keys()
    for k in a.fields:
        np.testing.assert_allclose(a.fields[k], b.fields[k], rtol=0, atol=1e-15)
    for k in a.diagnostics:
        np.testing.assert_allclose(a.diagnostics[k], b.diagnostics[k], rtol=1e-14, atol=1e-15)


def interrupt_and_resume(case, tmp_path, k, overrides=()):
    whole = pdenet.run(case, overrides=overrides, output=str(tmp_path / "whole.h5"))
    out = tmp_path / "cut.h5"
    with pytest.raises(Interrupted):
        pdenet.run(case, overrides=overrides, output=str(out), extra_sinks=[StopAt(k)])
    cut = pdenet.open(tmp_path / "cut.interrupted.h5")
    assert cut.status == "interrupted" and len(cut.time) == k + 1 < len(whole.time)
    resumed = resume(tmp_path / "cut.interrupted.h5")
    assert resumed.path == str(out) and resumed.status == "complete"
    back = pdenet.open(out)
    assert back.attrs["resumed_at_save"] == k
    for r in (resumed, back):
        same(whole, r)
    return whole, back


@pytest.mark.parametrize("stepper", ["cn", "euler"])
def test_heat_interrupted_at_a_random_step(tmp_path, stepper):
    rng = np.random.default_rng(17 + len(stepper))
    steps = 40 if stepper == "cn" else 500
    k = int(rng.integers(1, steps - 1))
    interrupt_and_resume(HEAT.format(stepper=stepper, t_end=0.2, steps=steps), tmp_path, k)


@pytest.mark.parametrize("stepper", ["explicit", "cn"])
def test_fokker_planck_interrupted_at_a_random_step(tmp_path, stepper):
    rng = np.random.default_rng(5)
    overrides = [f'time.stepper="{stepper}"', "mesh.cells=[40]", "time.steps=60", "time.save_every=1"]
    k = int(rng.integers(1, 59))
    whole, back = interrupt_and_resume(os.path.join(CASES, "fp_ou_1d.toml"), tmp_path, k, overrides)
    assert "free_energy" in back.diagnostics


def test_extend_a_finished_run(tmp_path):
    short = HEAT.format(stepper="cn", t_end=0.1, steps=20)
    long = pdenet.run(HEAT.format(stepper="cn", t_end=0.2, steps=40), write=False)
    pdenet.run(short, output=str(tmp_path / "s.h5"))
    with pytest.raises(CaseError, match="the run is complete"):
        resume(tmp_path / "s.h5")
    r = resume(tmp_path / "s.h5", output=str(tmp_path / "l.h5"),
                      overrides=["time.t_end=0.2", "time.steps=40"])
    same(long, r)
    with pytest.raises(CaseError, match="not the first saves"):
        resume(tmp_path / "s.h5", overrides=["time.t_end=0.2", "time.steps=30"])


def test_the_command_line(tmp_path):
    case = tmp_path / "h.toml"
    case.write_text(HEAT.format(stepper="cn", t_end=0.2, steps=40))
    whole = pdenet.run(str(case), write=False)
    with pytest.raises(Interrupted):
        pdenet.run(str(case), output=str(tmp_path / "o.h5"), extra_sinks=[StopAt(13)])
    p = run_cli("run", "--resume", str(tmp_path / "o.interrupted.h5"), "-q")
    assert p.returncode == 0, p.stderr
    same(whole, pdenet.open(tmp_path / "o.h5"))
    p = run_cli("run", str(case), "--resume", str(tmp_path / "o.h5"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--resume" in p.stderr


def test_cases_that_cannot_resume(tmp_path):
    with pytest.raises(Interrupted):
        pdenet.run(os.path.join(CASES, "fp_ou_1d.toml"), output=str(tmp_path / "b.h5"),
                   overrides=['time.stepper="bdf2"', "mesh.cells=[20]", "time.steps=8", "time.save_every=1"],
                   extra_sinks=[StopAt(3)])
    with pytest.raises(CaseError, match="--resume: this case cannot resume from its file: bdf2 needs"):
        resume(tmp_path / "b.interrupted.h5")
    pdenet.run(os.path.join(CASES, "network_depth.toml"), output=str(tmp_path / "n.h5"),
               overrides=["time.steps=4", "mesh.cells=[8]"])
    with pytest.raises(CaseError) as exc:
        resume(tmp_path / "n.h5")
    assert "\n" not in str(exc.value) and "--resume" in str(exc.value)


class _StopBar:
    """A progress bar that raises KeyboardInterrupt (Ctrl-C) at its k-th update."""

    def __init__(self, k):
        self.k, self.n = k, 0

    def update(self, n=1):
        self.n += 1
        if self.n == self.k:
            raise KeyboardInterrupt

    def close(self):
        pass


@pytest.mark.parametrize("batch", [0, 2])
def test_adam_training_interrupted_at_a_random_iteration(tmp_path, monkeypatch, batch):
    """Adam's moments, iterate and mini-batch RNG are restored: the resumed training is the
    uninterrupted one (every /train record, the trained controls, the final fields)."""
    import pdenet.runner as runner

    overrides = ["time.steps=4", "mesh.cells=[8]", 'train.method="adam"', "train.iterations=25",
                 "train.lr=0.05", f"train.batch_size={batch}"]
    case = os.path.join(CASES, "network_depth.toml")
    whole = pdenet.run(case, overrides=overrides, output=str(tmp_path / "whole.h5"))
    k = int(np.random.default_rng(batch + 3).integers(2, 24))
    real = runner.progress_bar
    monkeypatch.setattr(runner, "progress_bar", lambda total, desc, quiet: _StopBar(k))
    with pytest.raises(Interrupted):
        pdenet.run(case, overrides=overrides, output=str(tmp_path / "cut.h5"))
    monkeypatch.setattr(runner, "progress_bar", real)
    cut = pdenet.open(tmp_path / "cut.interrupted.h5")
    assert cut.status == "interrupted" and 0 < int(cut.optimizer["iteration"]) < 25
    resumed = resume(tmp_path / "cut.interrupted.h5")
    back = pdenet.open(tmp_path / "cut.h5")
    assert back.attrs["resumed_at_iteration"] == int(cut.optimizer["iteration"])
    for r in (resumed, back):
        assert r.train.keys() == whole.train.keys()
        for name in whole.train:
            np.testing.assert_allclose(r.train[name], whole.train[name], rtol=1e-13, atol=1e-15, err_msg=name)
        for name in whole.controls:
            np.testing.assert_allclose(r.controls[name], whole.controls[name], rtol=1e-13, atol=1e-15)
        same(whole, r)
        assert r.attrs["loss"] == pytest.approx(whole.attrs["loss"], rel=1e-13)
    with pytest.raises(CaseError, match="the training is complete"):
        resume(tmp_path / "cut.h5")


def test_init_from_warm_starts_the_controls(tmp_path):
    """Training 10 + 15 Adam iterations from a warm start begins where the first run ended: its
    first loss is the first run's final loss (the controls were taken over exactly)."""
    base = ["time.steps=4", "mesh.cells=[8]", 'train.method="adam"', "train.lr=0.05"]
    case = os.path.join(CASES, "network_depth.toml")
    first = pdenet.run(case, overrides=[*base, "train.iterations=10"], output=str(tmp_path / "a.h5"))
    warm = pdenet.run(case, overrides=[*base, "train.iterations=5", f'train.init_from="{tmp_path / "a.h5"}"'],
                      write=False)
    assert warm.train["loss"][0] == pytest.approx(first.train["loss"][-1], rel=1e-14)
    cold = pdenet.run(case, overrides=[*base, "train.iterations=5"], write=False)
    assert warm.train["loss"][-1] < cold.train["loss"][-1]
    with pytest.raises(CaseError, match=r"train.init_from: .*a.h5: /controls/a has shape \(1, 8\), this case "
                                        r"needs \(1, 16\)"):
        pdenet.validate(pdenet.load_case(case, overrides=[*base, "mesh.cells=[16]",
                                                          f'train.init_from="{tmp_path / "a.h5"}"']))
    with pytest.raises(CaseError, match="train.init_from: .*nope.h5: no such file"):
        pdenet.validate(pdenet.load_case(case, overrides=[*base, f'train.init_from="{tmp_path / "nope.h5"}"']))
