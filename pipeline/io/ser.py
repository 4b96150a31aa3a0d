"""SER: the video format of planetary and lucky imaging (FireCapture, SharpCap, Genika, oaCapture).

A SER file is a 178-byte header, then its frames back to back, then (optionally) a trailer of
one timestamp per frame. Every frame counts: discovery lists one header per frame, named by its
frame reference (``video.ser#frame=12``), and each frame is read alone from its byte range, so
the frames of one 10,000-frame video are spread over every worker like files.

The header (all integers little-endian): FileID (14 bytes), LuID, ColorID, LittleEndian, width,
height, PixelDepthPerPlane (bits), FrameCount (int32 each), Observer, Instrument, Telescope (40
bytes each), DateTime and DateTime_UTC (int64, 100 ns ticks since 0001-01-01).

- ColorID: 0 mono, 8-11 Bayer RGGB/GRBG/GBRG/BGGR (of the frame as stored: row 0 is the first
  row stored, the top of the picture), 100 RGB and 101 BGR (3 interleaved values per pixel).
  The CMY mosaics (16-19) are refused with the reason.
- Depth 1-8 bits is one byte per value; 9-16 bits two bytes.
- The LittleEndian flag is unreliable: the first writers used it the wrong way round, and later
  ones (Siril, GoQat) followed them, so a flag of 0 means little-endian in most files and
  big-endian by the specification. The byte order is therefore read from the data: the wrong
  order swaps each value's noisy low byte into its high byte, which makes neighbouring values
  of one colour differ hundreds of times more. Only a frame that cannot tell (flat, or empty)
  falls back to the flag, read as the writers use it (0 = little-endian).
- FrameCount 0 (a capture program that crashed before it wrote the count): the frames are
  counted from the file's size, as Siril does. A file that ends before its last frames has them
  listed with the reason (``limits.missing_frames``: as one line where a damaged count declares
  more than 10,000 that are not there). A frame over ``limits``' size is refused from the header.
- Trailer timestamps give each frame its capture time; without them every frame has the
  header's UTC date.
- Instrument names the camera, for grouping. SER has no exposure time.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, replace
from typing import IO

import numpy as np

from ..layout import SensorLayout
from .header import Header
from .limits import check_frame, missing_frames
from .registry import register
from .source import file_stat, frame_ref, read_range, text

HEADER_BYTES = 178
# 100 ns ticks from 0001-01-01 to 1970-01-01
TICKS_AT_UNIX_EPOCH, TICKS_PER_SECOND = 621355968000000000, 10_000_000
BAYER_IDS = {8: "RGGB", 9: "GRBG", 10: "GBRG", 11: "BGGR"}
CMY_IDS = {16: "CYYM", 17: "YCMY", 18: "YMCY", 19: "MYYC"}
MONO, RGB, BGR = 0, 100, 101
# rows of the first frame looked at to tell the byte order
ORDER_SAMPLE_ROWS = 64
# how much rougher the wrong byte order must look before the data overrule the flag
ORDER_EVIDENCE = 4.0


@dataclass(frozen=True)
class SerLayout:
    """What a SER header says, checked against the file's size."""

    colour: int
    width: int
    height: int
    depth: int  # bits per value
    declared: int  # FrameCount as written
    frames: int  # frames the file holds whole
    flag: int  # LittleEndian as written
    instrument: str
    utc: int  # DateTime_UTC ticks

    @property
    def planes(self) -> int:
        return 3 if self.colour in (RGB, BGR) else 1

    @property
    def itemsize(self) -> int:
        return 1 if self.depth <= 8 else 2

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * self.planes * self.itemsize

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.height, self.width, 3) if self.planes == 3 else (self.height, self.width)

    @property
    def trailer_offset(self) -> int:
        return HEADER_BYTES + self.declared * self.frame_bytes


def parse_header(head: bytes, size: int) -> SerLayout:
    """The layout of a SER file from its first 178 bytes and its size, or a ValueError that says
    what is wrong."""
    if len(head) < HEADER_BYTES:
        raise ValueError(f"not a SER file: {len(head)} bytes, shorter than the 178-byte header")
    _, colour, flag, width, height, depth, declared = struct.unpack_from("<7i", head, 14)
    utc = struct.unpack_from("<q", head, 170)[0]
    if colour in CMY_IDS:
        raise ValueError(f"a {CMY_IDS[colour]} (cyan-magenta-yellow) mosaic: only RGB Bayer, mono and RGB are read")
    if colour not in (MONO, RGB, BGR, *BAYER_IDS):
        raise ValueError(f"not a SER file: unknown ColorID {colour}")
    if width <= 0 or height <= 0 or not 1 <= depth <= 16 or declared < 0:
        raise ValueError(f"not a SER file: {width}x{height}, {depth} bits, {declared} frames")
    check_frame(height, width, 3 if colour in (RGB, BGR) else 1)
    layout = SerLayout(colour, width, height, depth, declared, 0, flag, text(head[82:122]), utc)
    fit = max(0, (size - HEADER_BYTES) // layout.frame_bytes)
    frames = fit if declared == 0 else min(declared, fit)
    return replace(layout, frames=frames)


def byte_order(sample: bytes, layout: SerLayout) -> str:
    """'<' or '>': the byte order of 16-bit values, from a sample of whole rows of a frame.

    The wrong order puts each value's low byte, the noisy one, on top: neighbouring values of
    one colour (2 pixels apart, which is one Bayer colour and one RGB channel) then differ far
    more. Where the sample cannot tell (flat or empty), the flag is read as most writers use it:
    0 = little-endian."""
    flagged = "<" if layout.flag == 0 else ">"
    if layout.itemsize == 1:
        return "<"
    row = layout.width * layout.planes
    count = len(sample) // 2 // row * row
    if count == 0:
        return flagged
    lag = 2 * layout.planes
    rough = {}
    for order in "<>":
        values = np.frombuffer(sample, f"{order}u2", count).reshape(-1, row).astype(np.int64)
        rough[order] = float(np.abs(values[:, lag:] - values[:, :-lag]).mean()) if row > lag else 0.0
    little, big = rough["<"], rough[">"]
    if big > ORDER_EVIDENCE * little:
        return "<"
    if little > ORDER_EVIDENCE * big:
        return ">"
    return flagged


def unix_time(tick: int) -> float | None:
    """Unix seconds of a SER time (100 ns ticks since 0001-01-01); None for 0 or a time before
    1970: a writer that left it empty."""
    return (int(tick) - TICKS_AT_UNIX_EPOCH) / TICKS_PER_SECOND if tick > TICKS_AT_UNIX_EPOCH else None


def timestamps(trailer: bytes, count: int) -> list[float | None]:
    """Unix seconds of each frame from the trailer (all None where it is missing or short)."""
    ticks = np.frombuffer(trailer, "<i8", count) if len(trailer) >= 8 * count else np.zeros(count, np.int64)
    return [unix_time(int(t)) for t in ticks]


@dataclass(frozen=True)
class OpenedSer:
    """A SER file's layout and the byte order of its values (from its first frame)."""

    layout: SerLayout
    order: str
    white: int | None  # the clip level of values of under 16 bits, where the data stay under it


def open_ser(path: str) -> OpenedSer:
    size, mtime = file_stat(path)
    return _opened(path, size, mtime)


@functools.lru_cache(maxsize=64)
def _opened(path: str, size: int, mtime: float) -> OpenedSer:
    """Each process parses a file's header once (keyed by its size and time: a changed file is
    parsed again); a frame read then costs one stat and one ranged read."""
    layout = parse_header(read_range(path, 0, HEADER_BYTES), size)
    if layout.frames == 0:
        return OpenedSer(layout, "<", None)
    rows = min(layout.height, ORDER_SAMPLE_ROWS)
    sample = read_range(path, HEADER_BYTES, rows * layout.width * layout.planes * layout.itemsize)
    order = byte_order(sample, layout)
    white = None
    if layout.itemsize == 2 and layout.depth < 16:
        top = (1 << layout.depth) - 1
        white = top if len(sample) >= 2 and int(np.frombuffer(sample, f"{order}u2").max()) <= top else None
    return OpenedSer(layout, order, white)


class Ser:
    name = "ser"
    suffixes = frozenset({".ser"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        return self.probe_frames(path, source)[0]

    def probe_frames(self, path: str, source: str | IO[bytes]) -> list[Header]:
        opened = open_ser(path)
        layout = opened.layout
        if layout.frames == 0 and layout.declared == 0:
            raise ValueError("the SER file holds no frame")
        count = max(layout.declared, layout.frames)
        # the trailer follows every declared frame: only a whole file has it
        trailer = read_range(path, layout.trailer_offset, 8 * layout.frames) if layout.declared else b""
        times = timestamps(trailer, layout.frames)
        start = unix_time(layout.utc)
        colours = BAYER_IDS.get(layout.colour)
        one = Header(path, shape=layout.shape, dtype="uint8" if layout.itemsize == 1 else "uint16",
                     model=layout.instrument, layout=SensorLayout.bayer(colours) if colours else SensorLayout(),
                     white_level=opened.white)
        cut = f"the SER file is truncated: it holds {layout.frames} of its {layout.declared} frames whole"
        return [replace(one, path=frame_ref(path, i), time=times[i] if times[i] is not None else start)
                for i in range(layout.frames)] + missing_frames(path, layout.frames, count, cut)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        """A SER file read whole (``read_pixels`` of its plain path): its first frame."""
        layout = parse_header(data[:HEADER_BYTES], len(data))
        if layout.frames == 0:
            raise ValueError("the SER file holds no whole frame")
        first = data[HEADER_BYTES : HEADER_BYTES + layout.frame_bytes]
        return self._pixels(first, layout, byte_order(first, layout), out)

    def read_frame(self, path: str, index: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bytes]:
        opened = open_ser(path)
        layout = opened.layout
        if not 0 <= index < max(layout.frames, layout.declared):
            raise ValueError(f"no frame {index} in this SER file (it holds {layout.frames})")
        data = read_range(path, HEADER_BYTES + index * layout.frame_bytes, layout.frame_bytes)
        if len(data) < layout.frame_bytes:
            raise ValueError(f"the SER file is truncated in frame {index}: {len(data)} of its {layout.frame_bytes} "
                             f"bytes")
        return self._pixels(data, layout, opened.order, out), data

    @staticmethod
    def _pixels(data: bytes, layout: SerLayout, order: str, out: np.ndarray | None) -> np.ndarray:
        values = np.frombuffer(data, np.uint8 if layout.itemsize == 1 else f"{order}u2").reshape(layout.shape)
        if layout.colour == BGR:
            values = values[..., ::-1]  # channels as R, G, B, as every other colour format gives them
        if out is not None and out.shape == values.shape and out.dtype == values.dtype.newbyteorder("="):
            np.copyto(out, values)
            return out
        return values.astype(values.dtype.newbyteorder("="))


FORMAT = register(Ser())
