"""DNG copies carrying our FixBadPixelsList: read back by tifffile, rawpy and exiftool, not by us alone."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rawpy
import tifffile

from pipeline.fix.dng_copy import raw_ifd, write_dng_with_opcode
from pipeline.fix.opcodes import FixBadPixelsList, Opcode, apply_fix_bad_pixels, bayer_phase, encode_opcode_list
from pipeline.synth.writers import dng_bytes, dng_tags

H, W = 32, 48
WARP = Opcode(1, (1, 3, 0, 0), 1, struct.pack(">I6d2d", 1, 1.0, 0.01, 0, 0, 0, 0, 0.5, 0.5))  # WarpRectilinear
CAMERA_FIX = FixBadPixelsList(1, [(5, 7)], [(0, 40, H, 41)]).opcode()  # a camera's own bad pixel list


def mosaic(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(300, 4000, (H, W)).astype(np.uint16)


def pidng_dng(path: Path, data: np.ndarray, active_area: tuple[int, ...] | None = None,
              opcode_list1: bytes | None = None) -> Path:
    """A little-endian DNG as pidng writes it: RGGB, the raw image in IFD0, one tile."""
    from pidng.dng import Tag

    tags = dng_tags(data.shape, 256, 4095, (2.0, 1.0, 1.5), "Hotpixels", "Synth 1")
    if active_area is not None:
        tags.set(Tag.ActiveArea, list(active_area))
    if opcode_list1 is not None:
        tags.set(Tag.OpcodeList1, list(opcode_list1))
    path.write_bytes(dng_bytes(tags, data))
    return path


# --- a classic TIFF laid out by hand, for what pidng does not write: MM, SubIFDs, chains -----
_TYPES = {"B": (1, "B"), "A": (2, ""), "H": (3, "H"), "I": (4, "I"), "R": (5, "I"), "U": (7, ""),
          "r": (10, "i"), "D": (13, "I")}


class TiffBuilder:
    """Blobs and IFDs appended in any order (leaves first), linked by the offsets returned."""

    def __init__(self, order: str) -> None:
        self.order = order
        self.buf = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + bytes(4))

    def blob(self, data: bytes) -> int:
        self.buf += bytes(len(self.buf) % 2)
        at = len(self.buf)
        self.buf += data
        return at

    def ifd(self, tags: list, next_ifd: int = 0) -> int:
        self.buf += bytes(len(self.buf) % 2)
        at = len(self.buf)
        values_at = at + 2 + 12 * len(tags) + 4
        entries, values = b"", bytearray()
        for tag, kind, value in sorted(tags, key=lambda t: t[0]):
            code, fmt = _TYPES[kind]
            if kind == "A":
                data, count = value.encode() + b"\0", len(value) + 1
            elif kind == "U":
                data, count = bytes(value), len(value)
            elif kind in "Rr":
                data, count = struct.pack(f"{self.order}{2 * len(value)}{fmt}", *(v for p in value for v in p)), len(value)
            else:
                data, count = struct.pack(f"{self.order}{len(value)}{fmt}", *value), len(value)
            if len(data) <= 4:
                field = data + bytes(4 - len(data))
            else:
                field = struct.pack(self.order + "I", values_at + len(values))
                values += data + bytes(len(data) % 2)
            entries += struct.pack(self.order + "HHI", tag, code, count) + field
        self.buf += struct.pack(self.order + "H", len(tags)) + entries + struct.pack(self.order + "I", next_ifd)
        self.buf += values
        return at

    def file(self, path: Path, ifd0: int) -> Path:
        self.buf[4:8] = struct.pack(self.order + "I", ifd0)
        path.write_bytes(bytes(self.buf))
        return path


def raw_tags(b: TiffBuilder, data: np.ndarray, opcode_list1: bytes | None = None, photometric: int = 32803) -> list:
    strip = b.blob(data.astype(b.order + "u2").tobytes())
    tags = [(254, "I", [0]), (256, "I", [W]), (257, "I", [H]), (258, "H", [16]), (259, "H", [1]),
            (262, "H", [photometric]), (273, "I", [strip]), (277, "H", [1]), (278, "I", [H]),
            (279, "I", [2 * H * W]), (284, "H", [1]), (33421, "H", [2, 2]), (33422, "B", [0, 1, 1, 2]),
            (50714, "H", [256]), (50717, "H", [4095]), (50829, "I", [2, 4, H - 2, W - 4])]
    if opcode_list1 is not None:
        tags.append((51008, "U", opcode_list1))
    return tags


def ifd0_tags(b: TiffBuilder, version: tuple[int, ...] = (1, 1, 0, 0), raw: bool = False) -> list:
    """IFD0's DNG tags, and an 8x8 RGB thumbnail unless IFD0 is the raw image itself."""
    tags = [(271, "A", "Hotpixels"), (272, "A", "Handmade"), (50706, "B", list(version)),
            (50707, "B", [1, 1, 0, 0]), (50708, "A", "Hotpixels Handmade"),
            (50721, "r", [(1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)]),
            (50728, "R", [(1, 2), (1, 1), (2, 3)]), (50778, "H", [21])]
    if not raw:
        thumb = b.blob(bytes(range(192)))
        tags += [(254, "I", [1]), (256, "I", [8]), (257, "I", [8]), (258, "H", [8, 8, 8]), (259, "H", [1]),
                 (262, "H", [2]), (273, "I", [thumb]), (277, "H", [3]), (278, "I", [8]), (279, "I", [192]),
                 (284, "H", [1])]
    return tags


def preview_ifd(b: TiffBuilder, next_ifd: int = 0) -> int:
    return b.ifd([(254, "I", [1]), (256, "I", [4]), (257, "I", [4]), (258, "H", [8]), (259, "H", [1]),
                  (262, "H", [1]), (273, "I", [b.blob(bytes(range(16)))]), (277, "H", [1]), (278, "I", [4]),
                  (279, "I", [16])], next_ifd)


def handmade(path: Path, layout: str, data: np.ndarray, opcode_list1: bytes | None = None) -> tuple[Path, int]:
    """A DNG whose raw IFD is named by ``layout``'s kind of pointer; returns it and where that
    pointer lies (a file offset)."""
    order = ">" if layout.startswith("mm") else "<"
    b = TiffBuilder(order)
    raw_ifd_tags = raw_tags(b, data, opcode_list1)
    if layout == "mm-subifd-inline":  # SubIFDs = [raw], one LONG: the offset sits in the entry
        raw = b.ifd(raw_ifd_tags)
        tags = [*ifd0_tags(b), (330, "I", [raw])]
        ifd0 = b.ifd(tags)
        pointer = ifd0 + 2 + 12 * sorted(t[0] for t in tags).index(330) + 8
    elif layout == "mm-subifd-array":  # SubIFDs = [preview, raw] of type IFD: out of line
        raw, preview = b.ifd(raw_ifd_tags), preview_ifd(b)
        ifd0 = b.ifd([*ifd0_tags(b), (330, "D", [preview, raw])])
        pointer = -1  # read back through tifffile below
    elif layout == "ii-next-of-ifd0":  # IFD0 a thumbnail, the raw image its next IFD
        raw = b.ifd(raw_ifd_tags)
        tags = ifd0_tags(b)
        ifd0 = b.ifd(tags, next_ifd=raw)
        pointer = ifd0 + 2 + 12 * len(tags)
    elif layout == "ii-ifd0-then-preview":  # the raw image in IFD0, a preview after it
        ifd0 = b.ifd([*ifd0_tags(b, raw=True), *raw_ifd_tags], next_ifd=preview_ifd(b))
        pointer = 4
    else:
        raise AssertionError(layout)
    b.file(path, ifd0)
    if pointer == -1:
        with tifffile.TiffFile(path) as tif:
            pointer = tif.pages[0].tags[330].valueoffset + 4
    return path, pointer


# --- reading a file back without our parser -------------------------------------------------
def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Page:
    """What tifffile reads of one IFD, read while the file is open."""

    offset: int
    tags: dict[int, Any]
    dataoffsets: tuple[int, ...]
    databytecounts: tuple[int, ...]
    pixels: Any  # the raw image's array, None for other IFDs


def tiff_pages(path: Path) -> list[Page]:
    """IFD0's chain and its SubIFDs, as tifffile finds them."""
    out = []
    with tifffile.TiffFile(path) as tif:
        for top in tif.pages:
            for page in [top, *(top.pages or [])]:
                tags = {tag.code: tag.value for tag in page.tags.values()}
                raw = tags.get(262) == 32803 and tags.get(254, 0) == 0
                out.append(Page(page.offset, tags, tuple(page.dataoffsets), tuple(page.databytecounts),
                                page.asarray() if raw else None))
    return out


def raw_page(path: Path) -> Page:
    (page,) = [p for p in tiff_pages(path) if p.pixels is not None]
    return page


def strips(path: Path) -> list[bytes]:
    page = raw_page(path)
    data = path.read_bytes()
    return [data[o: o + n] for o, n in zip(page.dataoffsets, page.databytecounts)]


def opcodes_by_struct(path: Path) -> list[tuple[int, tuple[int, int, int, int], int, bytes]]:
    """OpcodeList1 of the raw IFD, via tifffile, decoded here by struct (big-endian always)."""
    value = bytes(raw_page(path).tags[51008])
    (count,) = struct.unpack_from(">I", value)
    out, at = [], 4
    for _ in range(count):
        op_id, v0, v1, v2, v3, flags, size = struct.unpack_from(">I4BII", value, at)
        out.append((op_id, (v0, v1, v2, v3), flags, value[at + 16: at + 16 + size]))
        at += 16 + size
    assert at == len(value)
    return out


def dng_version(path: Path, tag: int = 50706) -> tuple[int, ...]:
    return tuple(tiff_pages(path)[0].tags[tag])


def dng_version_at(path: Path) -> int:
    """Where IFD0's DNGVersion bytes lie (inline in its entry)."""
    entry = raw_ifd(path).ifd0.get(50706)
    assert entry is not None
    return entry.value_at


def visible(path: Path) -> np.ndarray:
    with rawpy.imread(str(path)) as raw:
        return raw.raw_image_visible.copy()


def assert_appended_only(src: Path, dst: Path, pointer: int, new_ifd: int, patched: tuple[int, ...] = ()) -> None:
    """``dst`` is ``src`` plus bytes at the end, but for the pointer (now naming the new raw IFD)
    and the ``patched`` 4-byte fields."""
    a, b = src.read_bytes(), dst.read_bytes()
    assert len(b) > len(a)
    order = "<" if a[:2] == b"II" else ">"
    assert struct.unpack_from(order + "I", b, pointer) == (new_ifd,)
    head = bytearray(b[: len(a)])
    for at in (pointer, *patched):
        head[at: at + 4] = a[at: at + 4]
    assert bytes(head) == a


# --- the tests ------------------------------------------------------------------------------
def test_raw_ifd_agrees_with_tifffile(tmp_path):
    path = pidng_dng(tmp_path / "a.dng", mosaic(), active_area=(2, 4, H - 2, W - 4))
    info = raw_ifd(path)
    page = raw_page(path)
    assert info.byte_order == "<"
    assert info.ifd.offset == page.offset
    assert info.ifd.pointer == 4  # pidng's raw image is IFD0, named by the header
    assert (info.height, info.width) == page.pixels.shape == (H, W)
    assert info.active_area == tuple(page.tags[50829]) == (2, 4, H - 2, W - 4)
    assert info.cfa == ((0, 1), (1, 2))
    assert info.bayer_phase() == bayer_phase("RGGB")
    assert info.opcode_list1 is None
    assert info.dng_version == (1, 4, 0, 0) and info.dng_backward_version == (1, 0, 0, 0)
    assert raw_ifd(path.read_bytes()) == info


def test_copy_of_a_pidng_dng(tmp_path):
    """Little-endian, raw image in IFD0: only the header's offset changes in the old bytes."""
    colour = np.tile(np.array([[0, 1], [1, 2]]), (H // 2, W // 2))
    clean = np.array([1000, 2000, 3000], np.uint16)[colour]
    points = [(6, 9), (6, 10), (20, 30), (25, 7)]  # stage 1, inside the ActiveArea
    rects = [(3, 17, 29, 18)]
    hot = clean.copy()
    for r, c in points:
        hot[r, c] = 4095
    hot[3:29, 17] = 0
    src = pidng_dng(tmp_path / "src.dng", hot, active_area=(2, 4, H - 2, W - 4))
    before = sha(src)
    op = FixBadPixelsList(raw_ifd(src).bayer_phase(), points, rects)
    info = write_dng_with_opcode(src, tmp_path / "dst.dng", op)
    dst = tmp_path / "dst.dng"

    assert sha(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.dng", "src.dng"]  # no temp file left
    assert info.pointer == 4
    assert_appended_only(src, dst, 4, info.raw_ifd_offset)
    assert info.opcodes == 1 and info.dng_version == (1, 4, 0, 0)
    assert info.raw_ifd_offset % 2 == 0 and info.opcode_list1_offset % 2 == 0
    assert strips(dst) == strips(src)
    assert np.array_equal(raw_page(dst).pixels, hot)
    ((op_id, version, flags, params),) = opcodes_by_struct(dst)
    assert (op_id, version, flags) == (5, (1, 3, 0, 0), 1)
    assert len(params) == 12 + 8 * len(points) + 16 * len(rects)
    assert struct.unpack_from(">3I", params) == (1, len(points), len(rects))
    assert dng_version(dst) == (1, 4, 0, 0) and dng_version(dst, 50707) == (1, 0, 0, 0)
    assert np.array_equal(visible(dst), visible(src))
    assert raw_ifd(dst).opcode_list1 == encode_opcode_list([op.opcode()])
    # what a reader that applies the opcode sees: every planted sensel back at its colour's level
    with rawpy.imread(str(dst)) as raw:
        stage1 = raw.raw_image.copy()
    assert np.array_equal(apply_fix_bad_pixels(stage1, op), clean)


def test_existing_list_is_kept_and_ours_appended(tmp_path):
    """Big-endian, raw image in a SubIFD, DNG 1.1 with a camera's WarpRectilinear and
    FixBadPixelsList: DNGVersion raised to 1.3 in place, the list grows to three."""
    existing = encode_opcode_list([WARP, CAMERA_FIX])
    src, pointer = handmade(tmp_path / "src.dng", "mm-subifd-inline", mosaic(), existing)
    before = sha(src)
    assert raw_ifd(src).opcode_list1 == existing
    op = FixBadPixelsList(bayer_phase("RGGB", origin=(2, 4)), [(10, 12)], [(4, 20, 5, 30)])
    info = write_dng_with_opcode(src, tmp_path / "dst.dng", op)
    dst = tmp_path / "dst.dng"

    assert sha(src) == before
    assert info.pointer == pointer and info.opcodes == 3
    version_at = dng_version_at(src)
    assert_appended_only(src, dst, pointer, info.raw_ifd_offset, patched=(version_at,))
    assert dng_version(dst) == (1, 3, 0, 0) and dng_version(dst, 50707) == (1, 1, 0, 0)
    ops = opcodes_by_struct(dst)
    assert [o[0] for o in ops] == [1, 5, 5]
    assert encode_opcode_list([Opcode(i, v, f, b) for i, v, f, b in ops[:2]]) == existing  # the camera's, as they were
    assert ops[2] == (5, (1, 3, 0, 0), 1, op.params())
    assert strips(dst) == strips(src)
    assert np.array_equal(visible(dst), visible(src))


@pytest.mark.parametrize("layout", ["mm-subifd-array", "ii-next-of-ifd0", "ii-ifd0-then-preview"])
def test_every_kind_of_pointer_to_the_raw_ifd(tmp_path, layout):
    src, pointer = handmade(tmp_path / "src.dng", layout, mosaic(2))
    op = FixBadPixelsList(raw_ifd(src).bayer_phase(), [(3, 3)])
    info = write_dng_with_opcode(src, tmp_path / "dst.dng", op)
    dst = tmp_path / "dst.dng"
    assert info.pointer == pointer
    version_at = dng_version_at(src)
    assert_appended_only(src, dst, pointer, info.raw_ifd_offset, patched=(version_at,))
    old, new = tiff_pages(src), tiff_pages(dst)
    assert len(old) == len(new)
    for a, b in zip(old, new):  # every other IFD where it was; the raw one moved, with its data
        assert (a.offset == b.offset) != (a.offset == info.old_raw_ifd_offset)
        assert a.dataoffsets == b.dataoffsets
    assert strips(dst) == strips(src)
    assert [o[0] for o in opcodes_by_struct(dst)] == [5]
    assert np.array_equal(visible(dst), visible(src))


def test_exiftool_reads_the_copy(tmp_path):
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
    src, _ = handmade(tmp_path / "src.dng", "mm-subifd-inline", mosaic(), encode_opcode_list([WARP]))
    write_dng_with_opcode(src, tmp_path / "dst.dng", FixBadPixelsList(bayer_phase("RGGB", origin=(2, 4)), [(9, 9)]))

    def tags(path: Path) -> dict[str, str]:
        out = subprocess.run([exiftool, "-s", "-a", "-validate", "-warning", "-DNGVersion", "-OpcodeList1",
                              str(path)], capture_output=True, text=True, check=True).stdout
        found: dict[str, str] = {}
        for line in out.splitlines():
            name, _, value = line.partition(":")
            found.setdefault(name.strip(), "")
            found[name.strip()] += value.strip() + "\n"
        return found

    before, after = tags(src), tags(tmp_path / "dst.dng")
    assert after["OpcodeList1"].strip() == "WarpRectilinear, FixBadPixelsList"
    assert after["DNGVersion"].strip() == "1.3.0.0"
    assert set(after.get("Warning", "").splitlines()) <= set(before.get("Warning", "").splitlines())


@pytest.mark.parametrize(("area", "margins"), [((4, 6, 60, 90), (4, 6)), ((3, 5, 61, 93), (4, 6)),
                                                ((0, 1, 64, 96), (0, 2))])
def test_libraw_margins_against_active_area(tmp_path, area, margins):
    """LibRaw's top/left margin is the ActiveArea's origin when it is even; an odd one moves in
    to the next even row/column. raw_image_visible always starts at LibRaw's margins, and its
    raw_pattern is the CFA there: so stage 1 = visible + LibRaw's margins, never + ActiveArea."""
    stored = np.random.default_rng(4).integers(300, 4000, (64, 96)).astype(np.uint16)
    path = pidng_dng(tmp_path / "a.dng", stored, active_area=area)
    info = raw_ifd(path)
    assert info.active_area == area
    with rawpy.imread(str(path)) as raw:
        sizes = raw.sizes
        top, left = sizes.top_margin, sizes.left_margin
        assert (top, left) == margins
        assert (sizes.raw_height, sizes.raw_width) == (info.height, info.width)
        assert (sizes.height, sizes.width) == (area[2] - top, area[3] - left)
        assert np.array_equal(raw.raw_image_visible, stored[top: top + sizes.height, left: left + sizes.width])
        phase = bayer_phase(raw.raw_pattern, raw.color_desc.decode(), origin=(top, left))
    assert phase == info.bayer_phase()
    if area[:2] == margins:
        assert np.array_equal(visible(path), stored[area[0]: area[2], area[1]: area[3]])


def test_refusals_leave_nothing_behind(tmp_path):
    src = pidng_dng(tmp_path / "src.dng", mosaic())
    op = FixBadPixelsList(bayer_phase("RGGB"), [(1, 1)])
    with pytest.raises(ValueError, match="over its source"):
        write_dng_with_opcode(src, src, op)
    with pytest.raises(ValueError, match="over its source"):
        write_dng_with_opcode(src, tmp_path / "sub" / ".." / "src.dng", op)
    with pytest.raises(ValueError, match="does not match"):
        write_dng_with_opcode(src, tmp_path / "dst.dng", FixBadPixelsList(bayer_phase("GRBG"), [(1, 1)]))
    with pytest.raises(ValueError, match="outside the 32x48 stage-1 image"):
        write_dng_with_opcode(src, tmp_path / "dst.dng", FixBadPixelsList(1, [(H, 0)]))
    with pytest.raises(ValueError, match="outside the 32x48 stage-1 image"):
        write_dng_with_opcode(src, tmp_path / "dst.dng", FixBadPixelsList(1, [], [(0, 0, 2, W + 1)]))
    broken = pidng_dng(tmp_path / "broken.dng", mosaic(), opcode_list1=encode_opcode_list([WARP])[:-4])
    with pytest.raises(ValueError, match="opcode list truncated"):
        write_dng_with_opcode(broken, tmp_path / "dst.dng", op)
    linear, _ = handmade(tmp_path / "linear.dng", "ii-next-of-ifd0", mosaic())
    data = bytearray(linear.read_bytes())
    at = raw_ifd(bytes(data)).ifd.get(262).value_at
    data[at: at + 2] = struct.pack("<H", 34892)  # LinearRaw
    linear.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="no CFA"):
        write_dng_with_opcode(linear, tmp_path / "dst.dng", op)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.dng", "linear.dng", "src.dng"]


def test_what_is_not_a_classic_dng_is_refused(tmp_path):
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, mosaic(), bigtiff=True)
    with pytest.raises(ValueError, match="BigTIFF: DNG is never BigTIFF"):
        raw_ifd(big)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, mosaic(), photometric="minisblack")
    with pytest.raises(ValueError, match="no raw IFD"):
        raw_ifd(plain)
    with pytest.raises(ValueError, match="not a TIFF"):
        raw_ifd(b"\x89PNG\r\n\x1a\n" + bytes(8))
    truncated = pidng_dng(tmp_path / "t.dng", mosaic()).read_bytes()
    with pytest.raises(ValueError, match="truncated TIFF"):
        raw_ifd(truncated[:20])
