"""configs/*.yaml -> typed settings, with CLI overrides and errors that name the key.

What a user tunes lives here: the cluster, batching and checkpoints, detection's thresholds
(``pipeline.detect.config``) and the outputs. Each field is declared with ``setting`` (its
default and its documentation); configs/default.yaml is generated from them::

    python -m pipeline.config > configs/default.yaml

and a test keeps the shipped file equal to what they generate, comments included.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .detect.config import DetectConfig
from .setting import doc_of, setting


class ConfigError(ValueError):
    """A setting is unknown or has the wrong type; the message names it."""


@dataclass
class ClusterConfig:
    scheduler: str | None = setting(None, "address of an existing Dask scheduler (tcp://host:8786); null starts a "
                                          "local cluster")
    workers: int | None = setting(None, "local worker processes; null = one per core")
    threads_per_worker: int = setting(1, "one thread per process scales best for decode + accumulate")
    host: str = setting("127.0.0.1", "local scheduler bind address; loopback unless you mean to expose it")
    dashboard_address: str = setting("127.0.0.1:8787", "dashboard bind address; port 0 picks a free one")
    memory_limit: str = setting("auto", "per local worker, e.g. \"2GB\"")
    connect_timeout: float = setting(5.0, "seconds to reach --scheduler before giving up")


@dataclass
class ScanConfig:
    batch_size: int | None = setting(None, "files one read task decodes into its buffer, then adds to its "
                                           "partition's exact sums in one pass; null: from batch_bytes")
    batch_bytes: int = setting(268435456, "with batch_size null: decoded bytes that buffer holds (at least 8, at "
                                          "most 4096 files)")
    tile_values: int = setting(1048576, "values (rows x width x channels) per row tile of the partials: the unit "
                                        "of merging and transfer")
    split_every: int = setting(4, "partials merged per combine task in the tree reduction")
    split: str = setting("auto", "how a segment is cut for the worker threads: files (each reads its share and sums "
                                 "the whole sensor, then the sums are merged), bands (each reads every file and sums "
                                 "its own rows: nothing to merge), auto (bands where a thread's sums of the whole "
                                 "sensor would pass 1 GiB, or 512 MiB with at most 64 files per thread)")
    probe_batch: int = setting(256, "headers read per discovery task")
    uniform: bool = setting(False, "the set is one camera and layout: decode only the first header, just stat the "
                                   "rest (whose exposures, ISOs and dates then stay unknown)")
    range_counts: bool = setting(True, "count frames beyond the neighbours and the frame's noise: finds warm and "
                                       "flickering pixels in photos; about a third of the accumulation time")
    checkpoint_seconds: float = setting(60.0, "seconds of scanning per checkpointed segment: the most work an "
                                              "interruption can lose (a rerun resumes from the last checkpoint)")
    checkpoint_files: int = setting(1024, "the most files per checkpointed segment, split into one partition per "
                                          "worker thread")
    all_groups: bool = setting(False, "scan every camera/shape group into its own subfolder, not only the largest")
    cfa: str | None = setting(None, "a Bayer mosaic saved as plain gray PNG/TIFF: its pattern (RGGB, BGGR, GRBG or "
                                    "GBRG); null: read from lit frames' levels where they show one; raw files name "
                                    "their own")
    hdu: str | None = setting(None, "FITS files: the HDU to read, by EXTNAME (SCI) or index from 0 (1); null: the "
                                    "first HDU that holds an image")


@dataclass
class OutputConfig:
    report: bool = setting(True, "write report.html")
    exports: bool | list[str] = setting(True, "maps for other tools: true (all), false (none) or a list of dcraw, "
                                              "siril, mask, rawtherapee, fits_mask, pixinsight")


@dataclass
class Config:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def load(path: str | Path | None = None, overrides: dict[str, object] | None = None) -> Config:
    """Defaults, then the YAML file, then ``overrides`` ({"section.key": value}, from the CLI)."""
    config = Config()
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
        _apply(config, data, prefix="", source=str(path))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, key = dotted.split(".", 1)
            _apply(config, {section: {key: value}}, prefix="", source="command line")
    _check(config)
    return config


def _check(config: Config) -> None:
    """What a type cannot say: names that must be known."""
    from .layout import SensorLayout
    from .outputs import selected

    try:
        selected(config.output.exports)
        if config.scan.cfa:
            SensorLayout.bayer(config.scan.cfa)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _apply(obj, data: dict, prefix: str, source: str) -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting '{name}' in {source} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"setting '{name}' in {source} must be a mapping, got {value!r}")
            _apply(current, value, prefix=f"{name}.", source=source)
        else:
            setattr(obj, key, _coerce(name, value, hints[key], source))


def _coerce(name: str, value, hint, source: str):
    """Check ``value`` against the field's type; ints are accepted where floats are."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if union else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if typing.get_origin(option) is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    expected = " or ".join("null" if o is type(None) else getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"setting '{name}' in {source} must be {expected}, got {value!r}")


def as_dict(config) -> dict:
    return dataclasses.asdict(config)


HEADER = """\
# hotpixels default settings. Every key is optional in your own config: give only what you change.
# `hotpixels scan ... --config my.yaml`; command-line flags override the file.
# Generated from the settings' declarations: python -m pipeline.config > configs/default.yaml
"""


def default_yaml() -> str:
    """configs/default.yaml: every setting with its default and its documentation."""
    lines = [HEADER]
    for section in dataclasses.fields(Config):
        lines.append(f"{section.name}:")
        for f in dataclasses.fields(getattr(Config(), section.name)):
            value = f"  {f.name}: {_yaml_value(f.default)}"
            lines.append(f"{value:<36} # {doc_of(f)}")
        lines.append("")
    return "\n".join(lines)


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # plain where YAML reads it back as the same string, else quoted
        return value if yaml.safe_load(f"k: {value}") == {"k": value} else json.dumps(value)
    return repr(value)


if __name__ == "__main__":
    sys.stdout.write(default_yaml())
