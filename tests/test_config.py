"""Settings: the documented defaults are the real ones, and mistakes name the key."""

import dataclasses
from pathlib import Path

import pytest

from pipeline.config import Config, ConfigError, as_dict, default_yaml, load
from pipeline.setting import doc_of

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_yaml_documents_the_real_defaults():
    assert as_dict(load(CONFIGS / "default.yaml")) == as_dict(Config())


def test_default_yaml_is_what_the_settings_generate_comments_included():
    """configs/default.yaml is generated from the settings' declarations (python -m pipeline.config):
    a new setting, a changed default or a changed comment must be regenerated, never drift."""
    assert (CONFIGS / "default.yaml").read_text() == default_yaml()


def test_every_setting_is_documented():
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):
            assert doc_of(f), f"{section.name}.{f.name} has no documentation"


def test_exports_take_true_false_or_names(tmp_path):
    (tmp_path / "c.yaml").write_text("output:\n  exports: [dcraw, siril]\n")
    assert load(tmp_path / "c.yaml").output.exports == ["dcraw", "siril"]
    (tmp_path / "c.yaml").write_text("output:\n  exports: [dcraw, lightroom]\n")
    with pytest.raises(ConfigError, match=r"unknown export 'lightroom'.*known: dcraw, siril, mask, rawtherapee"):
        load(tmp_path / "c.yaml")


def test_a_cfa_must_be_a_bayer_name(tmp_path):
    assert load(None, {"scan.cfa": "gbrg"}).scan.cfa == "gbrg"
    with pytest.raises(ConfigError, match="unknown CFA pattern 'XTRANS'"):
        load(None, {"scan.cfa": "XTRANS"})


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")))
def test_every_shipped_config_loads(path):
    load(path)


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("scan:\n  batchsize: 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'scan.batchsize'.*batch_size"):
        load(tmp_path / "c.yaml")


def test_unknown_section_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("scna:\n  batch_size: 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'scna'"):
        load(tmp_path / "c.yaml")


@pytest.mark.parametrize("text,key", [("scan:\n  batch_size: many\n", "scan.batch_size"),
                                      ("scan:\n  all_groups: 1\n", "scan.all_groups"),
                                      ("cluster:\n  connect_timeout: fast\n", "cluster.connect_timeout"),
                                      ("cluster: 3\n", "cluster")])
def test_wrong_type_is_named(tmp_path, text, key):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=f"setting '{key}'"):
        load(tmp_path / "c.yaml")


def test_command_line_overrides_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 3\ncluster:\n  workers: 1\n")
    config = load(tmp_path / "c.yaml", {"scan.batch_size": 9, "cluster.workers": None})
    assert config.scan.batch_size == 9 and config.cluster.workers == 1
    assert config.cluster.connect_timeout == 5.0
