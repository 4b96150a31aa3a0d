"""A copy of a DNG whose raw IFD carries a FixBadPixelsList in OpcodeList1; the input is never
touched.

The copy is the input's bytes, unchanged, with a new OpcodeList1 and a new copy of the raw IFD
appended; the one pointer that named the old raw IFD (the header, the previous IFD's next-IFD
field, or an entry of IFD0's SubIFDs array) now names the new one, and DNGVersion is raised to
1.3.0.0 in place if it was lower. Nothing else moves, so the raw strips or tiles, every
out-of-line value (still at its old offset) and every other IFD are byte-identical by
construction; the old raw IFD stays behind, unreferenced. We parse the TIFF ourselves because
that needs the offset of every IFD and of the field that points at it. DNG is never BigTIFF.

Coordinates: OpcodeList1 works on the stage-1 image, the whole stored raw IFD (ImageWidth x
ImageLength, masked borders included), so points must be stage-1 (row, col). LibRaw's
``raw_image_visible`` starts at ``sizes.top_margin, left_margin``, which for a DNG is the
ActiveArea's top-left only when both are even: LibRaw 0.22 (rawpy 0.28) moves an odd ActiveArea
top or left one sensel in, to the next even row or column. Always add LibRaw's own margins
(``raw_image_visible == raw_image[top_margin:, left_margin:]`` holds either way), never the
ActiveArea read here. The DNG CFAPattern, for its part, starts at the ActiveArea's top-left.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..state.atomic import write_bytes
from .opcodes import DNG_1_3, FixBadPixelsList, bayer_phase, encode_opcode_list, parse_opcode_list

NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH, PHOTOMETRIC, SUB_IFDS = 254, 256, 257, 262, 330
CFA_REPEAT_PATTERN_DIM, CFA_PATTERN = 33421, 33422
DNG_VERSION, DNG_BACKWARD_VERSION, CFA_PLANE_COLOR, ACTIVE_AREA = 50706, 50707, 50710, 50829
OPCODE_LIST1 = 51008
CFA, LINEAR_RAW = 32803, 34892  # PhotometricInterpretation of a raw IFD
UNDEFINED = 7
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_INT_FORMAT = {1: "B", 3: "H", 4: "I", 6: "b", 7: "B", 8: "h", 9: "i", 13: "I"}


@dataclass(frozen=True)
class Entry:
    """One 12-byte IFD entry at file offset ``at``; ``value_at`` is where its value lies
    (inside the entry when it fits in 4 bytes)."""

    tag: int
    type: int
    count: int
    at: int
    value_at: int

    @property
    def size(self) -> int:
        return self.count * _TYPE_SIZE.get(self.type, 1)


@dataclass(frozen=True)
class Ifd:
    """An IFD at ``offset``, named by the 4-byte field at ``pointer``."""

    offset: int
    pointer: int
    entries: tuple[Entry, ...]
    next_offset: int

    def get(self, tag: int) -> Entry | None:
        return next((e for e in self.entries if e.tag == tag), None)


@dataclass(frozen=True)
class RawIfd:
    """What a fix needs of a DNG's raw IFD (NewSubFileType 0): its place, its stage-1 size and
    CFA, its OpcodeList1, and IFD0's DNG versions."""

    byte_order: str  # "<" (II) or ">" (MM)
    ifd: Ifd
    ifd0: Ifd
    width: int
    height: int
    active_area: tuple[int, int, int, int]  # top, left, bottom, right
    photometric: int
    cfa_dim: tuple[int, int] | None
    cfa_pattern: tuple[int, ...] | None
    cfa_colors: str  # CFAPlaneColor as letters: what CFAPattern's values name
    opcode_list1: bytes | None
    dng_version: tuple[int, ...] | None
    dng_backward_version: tuple[int, ...] | None

    @property
    def cfa(self) -> tuple[tuple[int, ...], ...]:
        """CFAPattern row by row (values name ``cfa_colors``), from the ActiveArea's top-left;
        ValueError for a raw IFD without one (LinearRaw)."""
        if self.photometric != CFA or self.cfa_dim is None or self.cfa_pattern is None:
            raise ValueError(f"raw IFD has PhotometricInterpretation {self.photometric}, no CFA: "
                             "FixBadPixelsList is defined for 2x2 Bayer only")
        rows, cols = self.cfa_dim
        return tuple(self.cfa_pattern[r * cols: (r + 1) * cols] for r in range(rows))

    def bayer_phase(self) -> int:
        """FixBadPixelsList's BayerPhase at the stage-1 origin (CFAPattern starts at the
        ActiveArea's top-left)."""
        return bayer_phase(np.array(self.cfa), self.cfa_colors, origin=self.active_area[:2])


@dataclass(frozen=True)
class WriteInfo:
    path: Path
    raw_ifd_offset: int  # the new raw IFD
    old_raw_ifd_offset: int
    pointer: int  # the field now naming the new raw IFD
    opcode_list1_offset: int
    opcodes: int  # in the new OpcodeList1, ours last
    dng_version: tuple[int, ...]  # as written
    appended: int  # bytes added at the end of the input


class _Tiff:
    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 8 or data[:2] not in (b"II", b"MM"):
            raise ValueError("not a TIFF/DNG: no II or MM byte-order mark")
        self.order = "<" if data[:2] == b"II" else ">"
        magic = self.u16(2)
        if magic == 43:
            raise ValueError("BigTIFF: DNG is never BigTIFF, refusing it")
        if magic != 42:
            raise ValueError(f"not a TIFF/DNG: magic number {magic}, expected 42")

    def unpack(self, fmt: str, at: int) -> tuple:
        size = struct.calcsize(self.order + fmt)
        if at < 0 or at + size > len(self.data):
            raise ValueError(f"truncated TIFF: {size} bytes at offset {at} lie past its {len(self.data)} bytes")
        return struct.unpack_from(self.order + fmt, self.data, at)

    def u16(self, at: int) -> int:
        return int(self.unpack("H", at)[0])

    def u32(self, at: int) -> int:
        return int(self.unpack("I", at)[0])

    def ifd(self, offset: int, pointer: int) -> Ifd:
        n = self.u16(offset)
        entries = []
        for i in range(n):
            at = offset + 2 + 12 * i
            tag, typ, count = self.unpack("HHI", at)
            size = count * _TYPE_SIZE.get(typ, 0)  # a value is only checked when read: a broken
            value_at = at + 8 if size <= 4 else self.u32(at + 8)  # maker tag must not block the fix
            entries.append(Entry(tag, typ, count, at, value_at))
        return Ifd(offset, pointer, tuple(entries), self.u32(offset + 2 + 12 * n))

    def ints(self, entry: Entry) -> tuple[int, ...]:
        fmt = _INT_FORMAT.get(entry.type)
        if fmt is None:
            raise ValueError(f"tag {entry.tag} has type {entry.type}, expected an integer type")
        return tuple(int(v) for v in self.unpack(f"{entry.count}{fmt}", entry.value_at))

    def raw(self, entry: Entry) -> bytes:
        return self.data[entry.value_at: entry.value_at + entry.size]

    def walk(self) -> list[Ifd]:
        """Every IFD of the IFD0 chain and, depth first, of its SubIFDs trees."""
        found: list[Ifd] = []
        seen: set[int] = set()

        def chain(offset: int, pointer: int) -> None:
            while offset:
                if offset in seen:
                    raise ValueError(f"IFD at offset {offset} is referenced twice (a loop)")
                seen.add(offset)
                ifd = self.ifd(offset, pointer)
                found.append(ifd)
                subs = ifd.get(SUB_IFDS)
                if subs is not None:
                    for k, sub in enumerate(self.ints(subs)):
                        chain(sub, subs.value_at + 4 * k)
                pointer, offset = offset + 2 + 12 * len(ifd.entries), ifd.next_offset

        chain(self.u32(4), 4)
        return found


def _read(src: str | os.PathLike | bytes) -> bytes:
    return bytes(src) if isinstance(src, bytes | bytearray) else Path(src).read_bytes()


def raw_ifd(src: str | os.PathLike | bytes) -> RawIfd:
    """The raw IFD of a DNG file (a path, or its bytes): NewSubFileType 0 with a CFA (else
    LinearRaw) PhotometricInterpretation, in the IFD0 chain or a SubIFD."""
    tiff = _Tiff(_read(src))
    ifds = tiff.walk()

    def value(ifd: Ifd, tag: int, default: int) -> int:
        entry = ifd.get(tag)
        return tiff.ints(entry)[0] if entry is not None else default

    candidates = [i for i in ifds if value(i, NEW_SUBFILE_TYPE, 0) == 0
                  and value(i, PHOTOMETRIC, 0) in (CFA, LINEAR_RAW)]
    cfa = [i for i in candidates if value(i, PHOTOMETRIC, 0) == CFA]
    chosen = cfa or candidates
    if not chosen:
        raise ValueError("no raw IFD: none has NewSubFileType 0 and a CFA or LinearRaw PhotometricInterpretation")
    if len(chosen) > 1:
        raise ValueError(f"{len(chosen)} raw IFDs (at offsets {[i.offset for i in chosen]}): which one is ambiguous")
    ifd, ifd0 = chosen[0], ifds[0]
    width, height = value(ifd, IMAGE_WIDTH, 0), value(ifd, IMAGE_LENGTH, 0)
    area = ifd.get(ACTIVE_AREA)
    active = tiff.ints(area) if area is not None else (0, 0, height, width)
    if len(active) != 4:
        raise ValueError(f"ActiveArea has {len(active)} values, expected 4")
    dim, pattern, plane = (ifd.get(t) for t in (CFA_REPEAT_PATTERN_DIM, CFA_PATTERN, CFA_PLANE_COLOR))
    dims = tiff.ints(dim) if dim is not None else None
    if dims is not None and len(dims) != 2:
        raise ValueError(f"CFARepeatPatternDim has {len(dims)} values, expected 2")
    opcodes, version, backward = ifd.get(OPCODE_LIST1), ifd0.get(DNG_VERSION), ifd0.get(DNG_BACKWARD_VERSION)
    return RawIfd(
        byte_order=tiff.order, ifd=ifd, ifd0=ifd0, width=width, height=height,
        active_area=(active[0], active[1], active[2], active[3]), photometric=value(ifd, PHOTOMETRIC, 0),
        cfa_dim=(dims[0], dims[1]) if dims is not None else None,
        cfa_pattern=tiff.ints(pattern) if pattern is not None else None,
        cfa_colors="".join("RGBCMYW"[v] if v < 7 else "?" for v in tiff.ints(plane)) if plane is not None else "RGB",
        opcode_list1=tiff.raw(opcodes) if opcodes is not None else None,
        dng_version=tiff.ints(version) if version is not None else None,
        dng_backward_version=tiff.ints(backward) if backward is not None else None,
    )


def write_dng_with_opcode(src: str | os.PathLike, dst: str | os.PathLike, op: FixBadPixelsList) -> WriteInfo:
    """Write ``dst``: ``src`` with ``op`` appended to its raw IFD's OpcodeList1 (a list already
    there, even one holding a FixBadPixelsList, keeps its opcodes ahead of ours), atomically.

    DNGBackwardVersion is left alone: our opcode is optional, so a reader older than 1.3 may
    skip it and still read the file. ``op``'s phase and coordinates are checked against the
    file (stage-1 size, CFA at the stage-1 origin) since a wrong one would be repaired wrongly
    or make rawspeed drop the whole list."""
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(src, dst)):
        raise ValueError(f"refusing to write the copy over its source {src}")
    data = src.read_bytes()
    info = raw_ifd(data)
    phase = info.bayer_phase()
    if op.bayer_phase != phase:
        raise ValueError(f"opcode BayerPhase {op.bayer_phase} does not match {src.name}'s CFA (phase {phase} "
                         "at the stage-1 origin)")
    for r, c in op.points:
        if r >= info.height or c >= info.width:
            raise ValueError(f"point {(r, c)} lies outside the {info.height}x{info.width} stage-1 image")
    for t, le, b, ri in op.rects:
        if b > info.height or ri > info.width:
            raise ValueError(f"rect {(t, le, b, ri)} reaches outside the {info.height}x{info.width} stage-1 image")
    if info.dng_version is None:
        raise ValueError(f"{src.name} has no DNGVersion in IFD0: not a DNG")
    ops = parse_opcode_list(info.opcode_list1) if info.opcode_list1 is not None else []
    opcode_list = encode_opcode_list([*ops, op.opcode()])

    out = bytearray(data)
    version = tuple(info.dng_version)
    if version < DNG_1_3:
        entry = info.ifd0.get(DNG_VERSION)
        if entry is None or entry.size != 4:
            raise ValueError(f"DNGVersion is {entry.size if entry else 0} bytes, expected BYTE[4]")
        out[entry.value_at: entry.value_at + 4] = bytes(DNG_1_3)  # inline in its entry
        version = DNG_1_3
    order = info.byte_order
    out += bytes(-len(out) % 4)  # TIFF wants word-aligned IFDs; 4 keeps the LONGs aligned too
    list_at = len(out)
    out += opcode_list + bytes(-len(opcode_list) % 4)
    entries = {e.tag: bytes(out[e.at: e.at + 12]) for e in info.ifd.entries}  # a patched DNGVersion included
    entries[OPCODE_LIST1] = struct.pack(order + "HHII", OPCODE_LIST1, UNDEFINED, len(opcode_list), list_at)
    ifd_at = len(out)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries[t] for t in sorted(entries))
    out += struct.pack(order + "I", info.ifd.next_offset)
    out[info.ifd.pointer: info.ifd.pointer + 4] = struct.pack(order + "I", ifd_at)
    write_bytes(dst, bytes(out))
    return WriteInfo(dst, ifd_at, info.ifd.offset, info.ifd.pointer, list_at, len(ops) + 1, version,
                     len(out) - len(data))
