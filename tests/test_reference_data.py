"""data/: every reference file parses, every entry has a value and a source, README lists it."""
import pytest

import reference


def test_every_entry_has_a_value_and_a_source():
    topics = reference.topics()
    assert {"meanfield", "orders", "fokker_planck", "training"} <= set(topics)
    for topic in topics:
        entries = reference.load(topic)
        assert entries, topic
        for name, e in entries.items():
            assert e.value is not None and len(e.source) > 20, (topic, name)
            assert e.tolerance is None or e.tolerance > 0, (topic, name)


def test_readme_lists_every_file():
    readme = (reference.DATA / "README.md").read_text()
    for topic in reference.topics():
        assert f"{topic}.toml" in readme, topic


def test_a_missing_source_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "bad.toml").write_text("[x]\nvalue = 1.0\n")
    monkeypatch.setattr(reference, "DATA", tmp_path)
    reference.load.cache_clear()
    try:
        with pytest.raises(ValueError, match="needs a value and a source"):
            reference.load("bad")
    finally:
        reference.load.cache_clear()
