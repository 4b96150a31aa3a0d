"""The exporter contract and its registry: one module per format, registered by name.

``output.exports`` in the config is ``true`` (every exporter), ``false`` (none) or a list of
names; an exporter writes its files into the result folder and returns their paths.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..defect import Defect
from ..records import StackMeta
from ..state import place


@dataclass(frozen=True)
class ExportContext:
    """What an exporter may use: the defects, the sensor's pixel shape (H, W[, C]), the number
    of frames behind them, and what is known of the stack (camera, layout, levels)."""

    out_dir: place.Folder
    defects: Sequence[Defect]
    shape: tuple[int, ...]
    n_frames: int
    meta: StackMeta

    def sensels(self) -> list[Defect]:
        """The defects one sensel each: lines expanded (``text.sensels``)."""
        from .text import sensels

        return sensels(self.defects, self.meta.layout.stride)


class Exporter(Protocol):
    name: str  # the name in ``output.exports``
    what: str  # one line for the README and error messages

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        ...


_EXPORTERS: dict[str, Exporter] = {}
_BUILTIN_LOADED = False
# the built-in exporter modules, in the order their files are written and listed
BUILTIN = ("dcraw", "siril", "mask_png", "rawtherapee", "fits_mask", "pixinsight")


def register(exporter: Exporter) -> Exporter:
    _EXPORTERS[exporter.name] = exporter
    return exporter


def exporters() -> dict[str, Exporter]:
    """Every registered exporter by name, the built-in ones first, in a fixed order."""
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        for module in BUILTIN:  # each registers itself on import
            importlib.import_module(f"{__package__}.{module}")
    builtin = [e for e in _EXPORTERS.values() if type(e).__module__.rsplit(".", 1)[-1] in BUILTIN]
    builtin.sort(key=lambda e: BUILTIN.index(type(e).__module__.rsplit(".", 1)[-1]))
    return {e.name: e for e in builtin} | _EXPORTERS


def selected(names: bool | Sequence[str]) -> list[Exporter]:
    """The exporters ``output.exports`` asks for; an unknown name is a ValueError that lists the known."""
    known = exporters()
    if names is True:
        return list(known.values())
    if names is False:
        return []
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown export {', '.join(map(repr, unknown))} in output.exports "
                         f"(known: {', '.join(known)})")
    return [known[n] for n in names]


def write_exports(names: bool | Sequence[str], ctx: ExportContext) -> list[place.Folder]:
    """Write what ``names`` asks for; the paths written, in the registry's order."""
    return [path for exporter in selected(names) for path in exporter.write(ctx)]
