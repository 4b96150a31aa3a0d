"""A SER writer for the tests, from the format's description (header, frames, trailer), written
independently of the reader: it packs the header field by field at its documented offset."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

TICKS_AT_UNIX_EPOCH = 621355968000000000
COLOUR_IDS = {"MONO": 0, "RGGB": 8, "GRBG": 9, "GBRG": 10, "BGGR": 11, "CYYM": 16, "RGB": 100, "BGR": 101}


def write_ser(path: Path, frames: np.ndarray, colour: str = "MONO", depth: int | None = None,
              big_endian: bool = False, flag: int | None = None, times: list[float] | None = None,
              instrument: str = "ZWO ASI462MC", declared: int | None = None, start: float | None = None) -> Path:
    """``frames``: (N, H, W) or (N, H, W, 3) as uint8 or uint16, in R, G, B order for colour
    (written B, G, R for ``colour="BGR"``). ``flag`` is the LittleEndian field as written (by
    default as most writers set it: 0 for little-endian data); ``times`` (Unix seconds) make
    the trailer; ``declared`` overrides FrameCount."""
    frames = np.asarray(frames)
    n, height, width = frames.shape[:3]
    depth = depth or 8 * frames.dtype.itemsize
    flag = (1 if big_endian else 0) if flag is None else flag
    head = bytearray(178)
    head[0:14] = b"LUCAM-RECORDER"
    struct.pack_into("<7i", head, 14, 0, COLOUR_IDS[colour], flag, width, height, depth,
                     n if declared is None else declared)
    head[82:82 + len(instrument)] = instrument.encode()
    if start is not None:
        struct.pack_into("<q", head, 170, int(start * 10_000_000) + TICKS_AT_UNIX_EPOCH)
    stored = frames[..., ::-1] if colour == "BGR" else frames
    if stored.dtype == np.uint16:
        stored = stored.astype(">u2" if big_endian else "<u2")
    body = np.ascontiguousarray(stored).tobytes()
    trailer = b""
    if times is not None:
        trailer = np.array([int(t * 10_000_000) + TICKS_AT_UNIX_EPOCH for t in times], "<i8").tobytes()
    path.write_bytes(bytes(head) + body + trailer)
    return path
