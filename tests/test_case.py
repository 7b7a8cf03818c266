import pytest

from conftest import case_path
from pdenet import CaseError, load_case

BASE = """
[case]
name = "t"
model = "network"
[mesh]
lower = [0.0]
upper = [1.0]
cells = [8]
[data]
inputs = ["sin(pi*y)"]
targets = ["0"]
[time]
t_end = 1.0
steps = 4
"""


def test_load_defaults_and_overrides():
    c = load_case(BASE, ["time.steps=8", "model.activation=\"relu\"", "case.name=other"])
    assert c["time.steps"] == 8 and c["time.dt"] == pytest.approx(0.125)
    assert c["model.activation"] == "relu" and c.name == "other"
    assert c["model.kernel.kind"] == "dense"  # default filled
    assert "steps = 8" in c.text


def test_shipped_case_loads():
    assert load_case(case_path("network_depth.toml")).model == "network"


@pytest.mark.parametrize("extra,key,msg", [
    ("[mesh]\ncell = 3", "mesh.cell", "did you mean 'cells'"),
    ("[mesch]\nx = 1", "[mesch]", "did you mean 'mesh'"),
    ("[time]\nstepper = \"rk5\"", "time.stepper", "not one of"),
    ("[model]\nactivation = \"relux\"", "model.activation", "did you mean 'relu'"),
    ("[model]\nintervals = 9", "model.intervals", "exceed"),
    ("[time]\ndt = 0.3", "time", "disagree"),
    ("[model.kernel]\nexpression = \"y.real\"", "model.kernel.expression", "attribute access"),
])
def test_errors_name_file_key_and_reason(tmp_path, extra, key, msg):
    text = BASE
    # replace a table if the extra redefines it
    for table in ("[mesh]", "[time]"):
        if extra.startswith(table):
            head, _, rest = text.partition(table)
            rest = rest.split("\n[", 1)
            body = rest[0] + "\n" + extra[len(table):]
            text = head + table + body + ("\n[" + rest[1] if len(rest) > 1 else "")
            break
    else:
        text = BASE + "\n" + extra + "\n"
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CaseError) as info:
        load_case(str(path)).model_cls(load_case(str(path)))
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert key in message and msg in message
    assert "\n" not in message


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(CaseError, match="no such file"):
        load_case(str(tmp_path / "nope.toml"))
    bad = tmp_path / "b.toml"
    bad.write_text("[case\nmodel=1")
    with pytest.raises(CaseError, match="invalid TOML"):
        load_case(str(bad))


def test_unknown_model_suggests():
    with pytest.raises(CaseError, match="did you mean 'network'"):
        load_case(BASE.replace('model = "network"', 'model = "netwrk"'))


def test_set_syntax_errors():
    with pytest.raises(CaseError, match="key=value"):
        load_case(BASE, ["time.steps"])


def test_case_reference_is_current():
    """docs/case-files.md is generated from the schemas: regenerate with scripts/gen_case_reference.py."""
    import os
    from pdenet.case import schema_markdown
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "case-files.md")
    with open(path) as fh:
        assert fh.read() == schema_markdown(), "run scripts/gen_case_reference.py"
