"""configs/*.yaml -> typed settings, with CLI overrides and errors that name the key.

The dataclass defaults below are the single source of truth; configs/default.yaml mirrors
them with comments, and a test keeps the two equal.
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .detect import DetectConfig


class ConfigError(ValueError):
    """A setting is unknown or has the wrong type; the message names it."""


@dataclass
class ClusterConfig:
    scheduler: str | None = None  # address of an existing scheduler (tcp://host:8786); None starts a LocalCluster
    workers: int | None = None  # LocalCluster worker processes; None = one per core
    threads_per_worker: int = 1  # decoding and accumulation hold the GIL only briefly, but processes scale better
    host: str = "127.0.0.1"  # LocalCluster scheduler bind address; loopback unless you mean to expose it
    dashboard_address: str = "127.0.0.1:8787"  # dashboard bind; port 0 picks a free one
    memory_limit: str = "auto"  # per LocalCluster worker
    connect_timeout: float = 5.0  # seconds to reach --scheduler before giving up


@dataclass
class ScanConfig:
    batch_size: int | None = None  # files one read task decodes into its buffer, then adds to its partition's exact sums in one pass; None: from batch_bytes
    batch_bytes: int = 268435456  # with batch_size None: decoded bytes that buffer holds (at least 8, at most 4096 files)
    tile_values: int = 1048576  # values (rows x width x channels) per row tile of the partials: the unit of merging and transfer
    split_every: int = 4  # partials merged per combine task in the tree reduction
    probe_batch: int = 256  # headers read per discovery task
    uniform: bool = False  # the set is one camera and layout: decode only the first header, just stat the rest
    range_counts: bool = True  # count frames beyond the neighbours' range: finds warm and flickering pixels in photos; about a third of the accumulation time
    checkpoint_files: int = 1024  # files per checkpointed segment, split into one partition per worker thread: a rerun resumes from these
    all_groups: bool = False  # scan every camera/shape group into its own subfolder instead of the largest only
    cfa: str | None = None  # a Bayer mosaic saved as plain gray PNG/TIFF: its pattern (RGGB, BGGR, GRBG or GBRG); raw files name their own


@dataclass
class OutputConfig:
    report: bool = True  # write report.html
    exports: bool = True  # write dcraw / RawTherapee / Siril maps and the PNG mask


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
    return config


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
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
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
        if typing.get_origin(option) is dict and isinstance(value, dict):
            return value
    expected = " or ".join("null" if o is type(None) else getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"setting '{name}' in {source} must be {expected}, got {value!r}")


def as_dict(config) -> dict:
    return dataclasses.asdict(config)
