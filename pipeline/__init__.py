"""hotpixels: find hot, stuck, dead and noisy pixels from per-pixel statistics over many frames.

The flow, one stage per subpackage::

    discover -> read (io) -> partial stats (stats) -> tree merge (engine) -> save (state)
             -> detect (detect) -> outputs / report

``import pipeline`` is light: numpy, but neither dask, distributed, bokeh, zarr nor numba,
which load where they are used. ``scan`` and ``detect`` are imported at once, because their
modules share their names (a lazy import of ``pipeline.detect`` would leave the attribute
``pipeline.detect`` bound to the module, not the function); both modules are light. The rest
of the public API loads on first use. See the README for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Config": "pipeline.config",
    "ConfigError": "pipeline.config",
    "load_config": ("pipeline.config", "load"),
    "Defect": "pipeline.defect",
    "read_defects": ("pipeline.defect", "read_csv"),
    "DetectConfig": "pipeline.detect",
    "Detection": "pipeline.detect",
    "NoImagesError": "pipeline.scan",
    "ScanError": "pipeline.scan",
    "ScanResult": "pipeline.scan",
    "PixelStats": "pipeline.stats",
    "read_stats": "pipeline.state.store",
    "SensorLayout": "pipeline.layout",
    "synthesize": "pipeline.synth",
}

__all__ = ["Config", "ConfigError", "Defect", "DetectConfig", "Detection", "NoImagesError", "PixelStats", "ScanError",
           "ScanResult", "SensorLayout", "detect", "load_config", "read_defects", "read_stats", "scan", "synthesize"]

from .detect import detect  # noqa: E402 - see the module docstring
from .scan import scan  # noqa: E402

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .config import Config, ConfigError
    from .config import load as load_config
    from .defect import Defect
    from .defect import read_csv as read_defects
    from .detect import DetectConfig, Detection
    from .layout import SensorLayout
    from .scan import NoImagesError, ScanError, ScanResult
    from .state.store import read_stats
    from .stats import PixelStats
    from .synth import synthesize


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562)."""
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    module, attr = (target, name) if isinstance(target, str) else target
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
