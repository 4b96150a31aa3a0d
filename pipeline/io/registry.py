"""The reader contract and its registry: one module per format, one registration each.

A format says which file suffixes are its own, reads a header without decoding pixels
(``probe``), and decodes the bytes of a file, into a given buffer where it can (``decode``).
A format whose files may hold many frames (SER, FITS cubes, TIFF stacks) also lists them (``probe_frames``)
and reads one frame by its byte range (``read_frame``): see ``MultiFrame``. Formats know
nothing of dask or statistics.
"""

from __future__ import annotations

from typing import IO, Protocol

import numpy as np

from .header import Header
from .source import extension


class Format(Protocol):
    """What a reader module registers."""

    name: str
    suffixes: frozenset[str]

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        """The header of the file at ``path`` (``source``: its local path or its bytes); raises
        on a file it cannot read."""
        ...

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        """The stored pixel grid of a file's bytes. ``out``, if given, is where the caller wants
        the pixels: a format that can decode straight into it returns ``out`` itself."""
        ...


class MultiFrame(Protocol):
    """What a format adds whose files may hold many frames."""

    def probe_frames(self, path: str, source: str | IO[bytes]) -> list[Header]:
        """One header per frame, named by its frame reference (``source.frame_ref``), or the
        file's one header under its plain path where it holds a single frame. A frame that
        cannot be read (the file ends before it) has its ``error``."""
        ...

    def read_frame(self, path: str, index: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bytes]:
        """Frame ``index`` of the file at ``path``, read alone, and its stored bytes (for the
        content digest)."""
        ...


_BY_SUFFIX: dict[str, Format] = {}
_FORMATS: list[Format] = []
_BUILTIN_LOADED = False


def register(fmt: Format) -> Format:
    """Make ``fmt`` the reader of its suffixes (a later registration of a suffix wins)."""
    _FORMATS.append(fmt)
    for suffix in fmt.suffixes:
        _BY_SUFFIX[suffix] = fmt
    return fmt


def format_for(path: str) -> Format | None:
    """The reader of ``path`` by its suffix, or None."""
    _load_builtin()
    return _BY_SUFFIX.get(extension(path))


def suffixes() -> frozenset[str]:
    _load_builtin()
    return frozenset(_BY_SUFFIX)


def formats() -> list[Format]:
    _load_builtin()
    return list(_FORMATS)


def _load_builtin() -> None:
    """Import the built-in format modules (each registers itself) on first use."""
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        from . import fits, jpeg, png, raw, ser, tiff, xisf  # noqa: F401 - registered on import
