"""Image formats: one reader module per format and a registry (``registry.py``); no dask.

Coordinates are the stored pixel grid: EXIF orientation is never applied, and raw files give
``raw_image_visible``, the CFA mosaic of the visible area, never demosaiced.
"""

from .header import Header
from .read import is_supported, read_file, read_header, read_headers, read_pixels
from .registry import Format, format_for, formats, register, suffixes
from .source import extension, file_stat, frame_ref, is_remote, split_ref

__all__ = ["Format", "Header", "extension", "file_stat", "format_for", "formats", "frame_ref", "is_remote",
           "is_supported", "read_file", "read_header", "read_headers", "read_pixels", "register", "split_ref",
           "suffixes"]
