"""DNG opcode lists and the FixBadPixelsList opcode (id 5), read, written and applied.

A DNG copy that carries our bad sensels in OpcodeList1 is repaired by every reader built on
Adobe's DNG SDK and by rawspeed (darktable); LibRaw and RawTherapee ignore it. An opcode list
is big-endian in every DNG, whatever the TIFF's byte order: a uint32 count, then per opcode a
16-byte header (id, the DNG version it needs as 4 bytes, flags, parameter byte count) and its
parameters.

Flags: we write 1 (optional), not 2 ("skip if preview", the SDK's ``kFlag_SkipIfPreview``).
Optional lets a reader that lacks the opcode skip it instead of refusing the file (rawspeed
throws on a non-optional opcode it does not implement, and so keeps none of the list), and
it is why DNGBackwardVersion need not be raised. Skip-if-preview would let a reader leave
the hot sensels in its previews and thumbnails, where the user checks the fix first; the
repair of a few thousand sensels costs nothing worth saving there.

``apply_fix_bad_pixels`` is our own applier, so ``hotpixels verify`` can show the opcode does
something without Adobe software. It follows the SDK's ``dng_bad_pixels.cpp``; see there.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

FIX_BAD_PIXELS_LIST = 5
DNG_1_3 = (1, 3, 0, 0)  # the first DNG version with opcode lists
OPTIONAL = 1
SKIP_IF_PREVIEW = 2

_HEADER = struct.Struct(">I4BII")  # id, version bytes, flags, parameter byte count
_UINT32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Opcode:
    """One opcode as stored: its parameters stay raw bytes, so opcodes we do not know (a
    camera's WarpRectilinear, GainMap...) pass through a merge unchanged."""

    id: int
    version: tuple[int, int, int, int]
    flags: int
    params: bytes

    @property
    def optional(self) -> bool:
        return bool(self.flags & OPTIONAL)

    def encode(self) -> bytes:
        return _HEADER.pack(self.id, *self.version, self.flags, len(self.params)) + self.params


@dataclass
class FixBadPixelsList:
    """Bad sensels in stage-1 coordinates (the whole stored raw image, masked borders
    included): points as (row, col), rects as (top, left, bottom, right), bottom and right
    exclusive. ``bayer_phase`` is ``bayer_phase()`` of the CFA at the stage-1 origin."""

    bayer_phase: int
    points: list[tuple[int, int]] = field(default_factory=list)
    rects: list[tuple[int, int, int, int]] = field(default_factory=list)
    flags: int = OPTIONAL

    def __post_init__(self) -> None:
        if self.bayer_phase not in (0, 1, 2, 3):
            raise ValueError(f"BayerPhase must be 0..3, got {self.bayer_phase}")
        self.points = [(int(r), int(c)) for r, c in self.points]
        self.rects = [(int(t), int(le), int(b), int(ri)) for t, le, b, ri in self.rects]
        for value in (v for p in self.points for v in p):
            if not 0 <= value <= _UINT32:
                raise ValueError(f"point coordinate {value} is not a uint32")
        for t, le, b, ri in self.rects:
            if not (0 <= t < b <= _UINT32 and 0 <= le < ri <= _UINT32):
                raise ValueError(f"rect {(t, le, b, ri)} is empty or not uint32 (top < bottom, left < right)")

    def params(self) -> bytes:
        head = struct.pack(">3I", self.bayer_phase, len(self.points), len(self.rects))
        body = struct.pack(f">{2 * len(self.points)}I", *(v for p in self.points for v in p))
        return head + body + struct.pack(f">{4 * len(self.rects)}I", *(v for r in self.rects for v in r))

    def opcode(self) -> Opcode:
        return Opcode(FIX_BAD_PIXELS_LIST, DNG_1_3, self.flags, self.params())

    def encode(self) -> bytes:
        """This one opcode, header included (as it sits inside an OpcodeList)."""
        return self.opcode().encode()

    @classmethod
    def from_params(cls, params: bytes, flags: int = OPTIONAL) -> FixBadPixelsList:
        phase, n_points, n_rects = _check_fix_bad_pixels(params)
        values = struct.unpack_from(f">{2 * n_points + 4 * n_rects}I", params, 12)
        points = [(values[2 * i], values[2 * i + 1]) for i in range(n_points)]
        at = 2 * n_points
        rects = [tuple(values[at + 4 * i: at + 4 * i + 4]) for i in range(n_rects)]
        return cls(phase, points, rects, flags)

    @classmethod
    def from_opcode(cls, op: Opcode) -> FixBadPixelsList:
        if op.id != FIX_BAD_PIXELS_LIST:
            raise ValueError(f"opcode {op.id} is not FixBadPixelsList ({FIX_BAD_PIXELS_LIST})")
        return cls.from_params(op.params, op.flags)


def _check_fix_bad_pixels(params: bytes) -> tuple[int, int, int]:
    """(phase, points, rects) of FixBadPixelsList parameters whose length obeys the spec's
    12 + 8 * points + 16 * rects (the SDK refuses the file otherwise)."""
    if len(params) < 12:
        raise ValueError(f"FixBadPixelsList truncated: {len(params)} parameter bytes, the header needs 12")
    phase, n_points, n_rects = struct.unpack_from(">3I", params)
    expected = 12 + 8 * n_points + 16 * n_rects
    if len(params) != expected:
        raise ValueError(f"FixBadPixelsList byte count {len(params)} does not match 12 + 8*{n_points} points"
                         f" + 16*{n_rects} rects = {expected}")
    return phase, n_points, n_rects


def parse_opcode_list(data: bytes) -> list[Opcode]:
    """The opcodes of an OpcodeList1/2/3 tag value. Refuses truncated lists, FixBadPixelsList
    opcodes that break the length rule, and bytes left after the last opcode (the SDK throws
    on all three, and a merge must not carry them into a new file)."""
    data = bytes(data)
    if len(data) < 4:
        raise ValueError(f"opcode list truncated: {len(data)} bytes, its count needs 4")
    (count,) = struct.unpack_from(">I", data)
    ops, at = [], 4
    for index in range(count):
        if at + _HEADER.size > len(data):
            raise ValueError(f"opcode list truncated: opcode {index + 1} of {count} has no 16-byte header at byte {at}")
        op_id, v0, v1, v2, v3, flags, size = _HEADER.unpack_from(data, at)
        at += _HEADER.size
        if at + size > len(data):
            raise ValueError(f"opcode list truncated: opcode {index + 1} of {count} (id {op_id}) declares "
                             f"{size} parameter bytes, {len(data) - at} left")
        params = data[at: at + size]
        if op_id == FIX_BAD_PIXELS_LIST:
            _check_fix_bad_pixels(params)
        ops.append(Opcode(op_id, (v0, v1, v2, v3), flags, params))
        at += size
    if at != len(data):
        raise ValueError(f"opcode list has {len(data) - at} bytes after its {count} opcodes")
    return ops


def encode_opcode_list(ops: Sequence[Opcode]) -> bytes:
    return struct.pack(">I", len(ops)) + b"".join(op.encode() for op in ops)


# BayerPhase as the DNG SDK uses it: dng_bad_pixels.h's IsGreen(row, col) is
# ((row + col + phase + (phase >> 1)) & 1) == 0 and dng_negative::SetBayerMosaic(phase)
# lays out these patterns (top-left 2x2 of the stage-1 image, row by row).
_PHASES = {"GRBG": 0, "RGGB": 1, "BGGR": 2, "GBRG": 3}


def bayer_phase(cfa: str | Sequence[Sequence[int]] | np.ndarray, colors: str = "RGBG",
                origin: tuple[int, int] = (0, 0)) -> int:
    """FixBadPixelsList's BayerPhase of a 2x2 Bayer CFA: 0 = green in a red row at the stage-1
    top-left (GRBG), 1 = red (RGGB), 2 = blue (BGGR), 3 = green in a blue row (GBRG).

    That is the numbering the DNG SDK applies (its IsGreen() and SetBayerMosaic()), which is
    what Adobe's readers do with the byte; "0 = red top-left" would make them take every
    green for red/blue and repair it from the wrong neighbours. (rawspeed ignores the phase.)

    ``cfa``: colour indices (LibRaw/rawpy ``raw_pattern``, read through ``colors``, rawpy's
    ``color_desc``; DNG CFAPattern values with ``colors="RGB"``) or letters ("RGGB"). They
    describe the CFA from stage-1 (row, col) = ``origin``: (0, 0) for a pattern at the
    stage-1 origin, ``(raw.sizes.top_margin, raw.sizes.left_margin)`` for rawpy's
    ``raw_pattern``, the ActiveArea's (top, left) for a DNG CFAPattern.
    """
    if isinstance(cfa, str):
        letters = cfa.upper()
        side = int(round(len(letters) ** 0.5))
        if side * side != len(letters):
            raise ValueError(f"CFA {cfa!r} is not a square pattern")
        grid = np.array(list(letters)).reshape(side, side)
    else:
        index = np.asarray(cfa)
        if index.ndim != 2:
            raise ValueError(f"CFA pattern must be 2-D, got shape {index.shape}")
        grid = np.array([[colors[int(v)].upper() if 0 <= v < len(colors) else "?" for v in row] for row in index])
    rows, cols = grid.shape
    if (rows, cols) != (2, 2) and rows % 2 == 0 and cols % 2 == 0 \
            and np.array_equal(grid, np.tile(grid[:2, :2], (rows // 2, cols // 2))):
        grid = grid[:2, :2]  # a Bayer pattern written out larger than its 2x2 period
    if grid.shape == (6, 6):
        raise ValueError(f"CFA pattern {grid.shape} is X-Trans: FixBadPixelsList is defined for 2x2 Bayer only")
    if grid.shape != (2, 2):
        raise ValueError(f"CFA pattern {grid.shape} is not 2x2: FixBadPixelsList is defined for 2x2 Bayer only")
    top, left = origin
    at_origin = "".join(grid[(r - top) % 2, (c - left) % 2] for r in (0, 1) for c in (0, 1))
    if at_origin not in _PHASES:
        raise ValueError(f"CFA {at_origin} is not a Bayer pattern: FixBadPixelsList is defined for 2x2 Bayer only")
    return _PHASES[at_origin]


def is_green(row: int, col: int, phase: int) -> bool:
    """The SDK's IsGreen: whether stage-1 (row, col) is a green sensel under ``phase``."""
    return ((row + col + phase + (phase >> 1)) & 1) == 0


# --- the SDK's repair (dng_bad_pixels.cpp), window cells named "rc" as in its comments ------
def _pairs(spec: str, centre: int) -> tuple[tuple[int, int, int, int, int], ...]:
    """'02-42 42-46*2' -> ((dy1, dx1, dy2, dx2, weight), ...) around the window's centre."""
    out = []
    for term in spec.split():
        pair, _, weight = term.partition("*")
        a, b = pair.split("-")
        out.append((int(a[0]) - centre, int(a[1]) - centre, int(b[0]) - centre, int(b[1]) - centre, int(weight or 1)))
    return tuple(out)


def _directions(table: Iterable[tuple[str, str]], centre: int) -> tuple:
    return tuple((_pairs(est, centre)[0], _pairs(grad, centre)) for est, grad in table)


# FixIsolatedPixel: 5x5 window, four directions, each an estimate (a same-colour pair) and
# the gradient along it; keeps the directions whose gradient is within 1.5x the smallest.
_ISOLATED = {
    True: _directions((
        ("02-42", "02-42 11-31 13-33 01-21 03-23 21-41 23-43"),
        ("11-33", "11-33 02-24 20-42 01-23 10-32 12-34 21-43"),
        ("20-24", "20-24 11-13 31-33 10-12 30-32 12-14 32-34"),
        ("13-31", "13-31 02-20 24-42 03-21 14-32 12-30 23-41"),
    ), 2),
    False: _directions((
        ("02-42", "02-42 12-32 01-21 21-41 03-23 23-43 11-31 13-33"),
        ("00-44", "00-44 11-33 01-23 10-32 12-34 21-43 02-24 20-42"),
        ("20-24", "20-24 21-23 10-12 12-14 30-32 32-34 11-13 31-33"),
        ("04-40", "04-40 13-31 03-21 14-32 12-30 23-41 02-20 24-42"),
    ), 2),
}
# FixSingleColumn: 9x9 window around a sensel of a lone bad column, seven directions, the
# result held between the nearest same-colour sensels beside it (FixSingleRow transposes).
_COLUMN = {
    True: (_directions((
        ("13-75", "13-75 15-46 22-53 35-66 42-73 03-65 23-85"),
        ("33-55", "33-55 22-55 33-66 13-35 53-75 23-45 43-65"),
        ("31-57", "31-57 33-46 35-48 40-53 42-55 30-56 32-58"),
        ("42-46", "42-46*2 33-35 53-55 23-25 43-45 63-65"),
        ("37-51", "37-51 35-42 33-40 48-55 46-53 38-52 36-50"),
        ("35-53", "35-53 26-53 35-62 15-33 55-73 25-43 45-63"),
        ("15-73", "15-73 13-42 26-55 33-62 46-75 05-63 25-83"),
    ), 4), _pairs("33-35 53-55", 4)),
    False: (_directions((
        ("02-86", "02-86 13-55 33-75 03-45 23-65 43-85"),
        ("22-66", "22-66 13-35 33-55 53-75 23-45 43-65"),
        ("20-68", "20-68 31-55 33-57 23-47 32-56 41-65"),
        ("42-46", "42-46 33-35 53-55 32-36 52-56"),
        ("28-60", "28-60 37-53 35-51 25-41 36-52 47-63"),
        ("26-62", "26-62 15-33 35-53 55-73 25-43 45-63"),
        ("06-82", "06-82 15-53 35-73 05-43 25-63 45-83"),
    ), 4), _pairs("42-46", 4)),
}
# FixClusteredPixel / FixClusteredRect: rings of same-colour offsets, nearest first; the first
# ring with a usable sensel gives the mean. Rings whose first row offset is odd are green-only.
_RING_POINT = (((-1, 1), (-1, -1), (1, -1), (1, 1)), ((-2, 0), (2, 0), (0, -2), (0, 2)),
               ((-2, -2), (-2, 2), (2, -2), (2, 2)))
_RING_RECT = _RING_POINT + (
    ((-1, -3), (-3, -1), (1, -3), (3, -1), (-1, 3), (-3, 1), (1, 3), (3, 1)),
    ((-4, 0), (4, 0), (0, -4), (0, 4)),
    ((-3, -3), (-3, 3), (3, -3), (3, 3)),
    ((-2, -4), (-4, -2), (2, -4), (4, -2), (-2, 4), (-4, 2), (2, 4), (4, 2)),
    ((-4, -4), (-4, 4), (4, -4), (4, 4)),
)
_POINT_PAD, _RECT_PAD = 2, 4  # the SDK's kBadPointPadding, kBadRectPadding

Getter = Callable[[int, int], int]


def _directional(get: Getter, row: int, col: int, directions: tuple) -> int:
    estimates, gradients = [], []
    for (a, b, c, d, _), grad in directions:
        estimates.append(get(row + a, col + b) + get(row + c, col + d))
        gradients.append(sum(w * abs(get(row + a1, col + b1) - get(row + a2, col + b2))
                             for a1, b1, a2, b2, w in grad))
    limit = (min(gradients) * 3) >> 1
    chosen = [e for e, g in zip(estimates, gradients) if g <= limit]
    count = 2 * len(chosen)
    return (sum(chosen) + (count >> 1)) // count


def _ring_mean(get: Getter, row: int, col: int, green: bool, rings: tuple,
               usable: Callable[[int, int], bool]) -> int | None:
    for ring in rings:
        if not green and ring[0][0] & 1:
            continue
        values = [get(row + dy, col + dx) for dy, dx in ring if usable(row + dy, col + dx)]
        if values:
            return (sum(values) + (len(values) >> 1)) // len(values)
    return None  # the SDK leaves such a sensel as it was


def _edge(i: int, n: int) -> int:
    """The SDK reads outside the image by repeating the first or last two rows (columns),
    which keeps the Bayer phase."""
    if i < 0:
        return i % 2
    return n - 2 + (i - n + 2) % 2 if i >= n else i


def apply_fix_bad_pixels(stage1: np.ndarray, op: FixBadPixelsList) -> np.ndarray:
    """A copy of the stage-1 mosaic (H, W, integers) repaired as the DNG SDK repairs it.

    As the SDK: points first, then rects. A point with no other listed sensel within 2 and 2
    from the edges takes FixIsolatedPixel's gradient-directed mean of same-colour pairs; any
    other point the mean of the nearest ring of usable same-colour sensels (diagonal 1 for
    green, then axis 2, then diagonal 2). A one-sensel-wide column (row) with no other rect
    within 4 and 2 from the edges takes FixSingleColumn's (Row's) seven-direction estimate,
    held between its nearest same-colour sensels; any other rect sensel the nearest of eight
    same-colour rings out to 4. Listed sensels are never sources, except that a rect's
    estimate may read points already repaired (the SDK fixes them in place first).

    Simplified: no tiling (the SDK's tiles give the same result); points or rects outside
    the image are dropped or clipped (the SDK skips them; rawspeed refuses the list). Only
    green versus red/blue matters to the SDK, so red and blue share one rule, as there.
    """
    image = np.asarray(stage1)
    if image.ndim != 2 or not np.issubdtype(image.dtype, np.integer):
        raise ValueError(f"FixBadPixelsList applies to a 2-D integer mosaic, got {image.dtype} {image.shape}")
    height, width = image.shape
    if height < 2 or width < 2:
        raise ValueError(f"mosaic {image.shape} is smaller than one 2x2 Bayer cell")
    work = image.copy()  # every estimate is a mean of, or held between, values of this dtype
    phase = op.bayer_phase
    points = sorted((r, c) for r, c in op.points if r < height and c < width)
    rects = sorted((t, le, min(b, height), min(ri, width)) for t, le, b, ri in op.rects
                   if t < height and le < width)
    listed = Counter(points)
    in_rect = np.zeros((height, width), bool)
    for t, le, b, ri in rects:
        in_rect[t:b, le:ri] = True

    def get(r: int, c: int) -> int:
        return int(work[_edge(r, height), _edge(c, width)])

    def inside(r: int, c: int) -> bool:
        return 0 <= r < height and 0 <= c < width

    near = range(-_POINT_PAD, _POINT_PAD + 1)
    for r, c in points:
        box = np.s_[max(r - _POINT_PAD, 0): r + _POINT_PAD + 1, max(c - _POINT_PAD, 0): c + _POINT_PAD + 1]
        isolated = sum(listed.get((r + dy, c + dx), 0) for dy in near for dx in near) == 1 and not in_rect[box].any()
        green = is_green(r, c, phase)
        if isolated and _POINT_PAD <= r < height - _POINT_PAD and _POINT_PAD <= c < width - _POINT_PAD:
            value: int | None = _directional(get, r, c, _ISOLATED[green])
        else:
            value = _ring_mean(get, r, c, green, _RING_POINT,
                               lambda y, x: inside(y, x) and (y, x) not in listed and not in_rect[y, x])
        if value is not None:
            work[r, c] = value

    for i, (t, le, b, ri) in enumerate(rects):
        isolated = not any(j != i and t2 < b + _RECT_PAD and t - _RECT_PAD < b2 and le2 < ri + _RECT_PAD
                           and le - _RECT_PAD < ri2 for j, (t2, le2, b2, ri2) in enumerate(rects))
        if isolated and ri == le + 1 and le >= 2 and ri <= width - 2:
            for r in range(t, b):
                work[r, le] = _single_line(get, r, le, phase)
        elif isolated and b == t + 1 and t >= 2 and b <= height - 2:
            for c in range(le, ri):  # FixSingleRow: FixSingleColumn on the transposed image
                work[t, c] = _single_line(lambda y, x: get(x, y), c, t, phase)
        else:
            for r in range(t, b):
                for c in range(le, ri):
                    value = _ring_mean(get, r, c, is_green(r, c, phase), _RING_RECT,
                                       lambda y, x: inside(y, x) and not in_rect[y, x])
                    if value is not None:
                        work[r, c] = value
    return work


def _single_line(get: Getter, row: int, col: int, phase: int) -> int:
    directions, bound_pairs = _COLUMN[is_green(row, col, phase)]
    bounds = [get(row + dy, col + dx) for a, b, c, d, _ in bound_pairs for dy, dx in ((a, b), (c, d))]
    return min(max(_directional(get, row, col, directions), min(bounds)), max(bounds))
