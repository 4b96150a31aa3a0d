"""DNG opcode lists: the bytes of FixBadPixelsList, BayerPhase, and our applier of the SDK's repair."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pipeline.fix.opcodes import (
    FixBadPixelsList,
    Opcode,
    apply_fix_bad_pixels,
    bayer_phase,
    encode_opcode_list,
    is_green,
    parse_opcode_list,
)

LEVEL = {"R": 1000, "G": 2000, "B": 3000}
XTRANS = ["GGRGGB", "GGBGGR", "BRGRBG", "GGBGGR", "GGRGGB", "RBGBRG"]


def flat_mosaic(pattern: str, shape: tuple[int, int] = (24, 32)) -> np.ndarray:
    """Every sensel at its colour's level: whatever the SDK's estimator picks, it is that level."""
    cell = np.array([[LEVEL[pattern[0]], LEVEL[pattern[1]]], [LEVEL[pattern[2]], LEVEL[pattern[3]]]], np.uint16)
    return np.tile(cell, (shape[0] // 2, shape[1] // 2))


def test_one_opcode_bytes_follow_the_spec():
    op = FixBadPixelsList(1, [(10, 11), (20, 21), (3, 4)], [(5, 6, 7, 8)])
    data = op.encode()
    op_id, v0, v1, v2, v3, flags, size = struct.unpack_from(">I4BII", data)
    assert (op_id, (v0, v1, v2, v3), flags) == (5, (1, 3, 0, 0), 1)
    assert size == 12 + 8 * 3 + 16 * 1 == len(data) - 16
    assert struct.unpack_from(">3I", data, 16) == (1, 3, 1)
    assert struct.unpack_from(">6I", data, 28) == (10, 11, 20, 21, 3, 4)
    assert struct.unpack_from(">4I", data, 52) == (5, 6, 7, 8)


@pytest.mark.parametrize(("points", "rects"), [(0, 0), (3, 0), (0, 2), (5, 4)])
def test_byte_count_is_12_plus_8_points_plus_16_rects(points, rects):
    op = FixBadPixelsList(2, [(i, i + 1) for i in range(points)], [(i, i, i + 2, i + 1) for i in range(rects)])
    data = op.encode()
    (size,) = struct.unpack_from(">I", data, 12)
    assert size == len(data) - 16 == 12 + 8 * points + 16 * rects


def test_round_trip_through_a_list():
    ours = FixBadPixelsList(3, [(1, 2), (30, 40)], [(0, 5, 100, 6)])
    warp = Opcode(1, (1, 3, 0, 0), 1, struct.pack(">I6d2d", 1, 1.0, 0.01, 0, 0, 0, 0, 0.5, 0.5))
    data = encode_opcode_list([warp, ours.opcode()])
    assert struct.unpack_from(">I", data) == (2,)
    parsed = parse_opcode_list(data)
    assert parsed[0] == warp  # an opcode we do not know passes through byte for byte
    assert FixBadPixelsList.from_opcode(parsed[1]) == ours
    assert FixBadPixelsList.from_params(ours.params()) == ours
    assert encode_opcode_list(parsed) == data


@pytest.mark.parametrize(("pattern", "phase"), [("GRBG", 0), ("RGGB", 1), ("BGGR", 2), ("GBRG", 3)])
def test_bayer_phase_of_each_pattern(pattern, phase):
    assert bayer_phase(pattern) == phase
    assert bayer_phase(pattern.lower()) == phase
    index = [["RGB".index(pattern[0]), "RGB".index(pattern[1])], ["RGB".index(pattern[2]), "RGB".index(pattern[3])]]
    assert bayer_phase(index, colors="RGB") == phase
    assert bayer_phase(np.tile(np.array(index), (3, 2)), colors="RGB") == phase  # written out over 6x4
    # the SDK's IsGreen agrees with the letters, which is what the number is for
    for r in range(4):
        for c in range(4):
            assert is_green(r, c, phase) == (pattern[(r % 2) * 2 + c % 2] == "G")


def test_bayer_phase_of_libraw_pattern_moved_to_the_stage1_origin():
    raw_pattern = [[0, 1], [3, 2]]  # rawpy's RGGB, colour_desc "RGBG"
    assert bayer_phase(raw_pattern) == 1
    # the same pattern seen from a visible area that starts at row 1, col 0 of stage 1
    assert bayer_phase(raw_pattern, origin=(1, 0)) == bayer_phase("GBRG")
    assert bayer_phase(raw_pattern, origin=(0, 1)) == bayer_phase("GRBG")
    assert bayer_phase(raw_pattern, origin=(3, 5)) == bayer_phase("BGGR")
    assert bayer_phase(raw_pattern, origin=(4, 6)) == 1


def test_x_trans_and_other_cfas_are_refused():
    with pytest.raises(ValueError, match="X-Trans: FixBadPixelsList is defined for 2x2 Bayer only"):
        bayer_phase("".join(XTRANS))
    with pytest.raises(ValueError, match="X-Trans: FixBadPixelsList is defined for 2x2 Bayer only"):
        bayer_phase([["RGB".index(ch) for ch in row] for row in XTRANS], colors="RGB")
    with pytest.raises(ValueError, match="not a Bayer pattern"):
        bayer_phase("CYGM")
    with pytest.raises(ValueError, match="not a Bayer pattern"):
        bayer_phase("RGBG")  # two greens in a row
    with pytest.raises(ValueError, match="not 2x2"):
        bayer_phase([[0, 1, 2]])


def test_malformed_lists_are_refused():
    good = encode_opcode_list([FixBadPixelsList(0, [(1, 1)]).opcode()])
    with pytest.raises(ValueError, match="truncated: 2 bytes"):
        parse_opcode_list(b"\x00\x00")
    with pytest.raises(ValueError, match="no 16-byte header"):
        parse_opcode_list(good[:12])
    with pytest.raises(ValueError, match="declares 20 parameter bytes, 12 left"):
        parse_opcode_list(good[:-8])
    with pytest.raises(ValueError, match="bytes after its 1 opcodes"):
        parse_opcode_list(good + b"\x00\x00")
    with pytest.raises(ValueError, match="truncated: opcode 2 of 2"):
        parse_opcode_list(b"\x00\x00\x00\x02" + good[4:])
    # nPoints says 2, the byte count holds one point: the 12 + 8p + 16r rule
    params = struct.pack(">5I", 0, 2, 0, 1, 1)
    bad = struct.pack(">I", 1) + struct.pack(">I4BII", 5, 1, 3, 0, 0, 1, len(params)) + params
    with pytest.raises(ValueError, match=r"byte count 20 does not match 12 \+ 8\*2 points \+ 16\*0 rects = 28"):
        parse_opcode_list(bad)
    with pytest.raises(ValueError, match="header needs 12"):
        FixBadPixelsList.from_params(b"\x00" * 8)
    with pytest.raises(ValueError, match="0..3"):
        FixBadPixelsList.from_params(struct.pack(">3I", 4, 0, 0))
    with pytest.raises(ValueError, match="empty"):
        FixBadPixelsList(0, rects=[(5, 5, 5, 6)])


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_apply_replaces_planted_hot_sensels_from_their_colour(pattern):
    clean = flat_mosaic(pattern)
    h, w = clean.shape
    points = [(7, 5), (7, 25),  # isolated: FixIsolatedPixel's directional estimate
              (10, 10), (10, 11), (11, 10), (11, 11),  # a 2x2 cluster, one of each colour
              (5, 20), (5, 22), (5, 24),  # three of one colour in a row: none may feed another
              (0, 0), (h - 1, w - 1), (1, w - 2)]  # at the edges: the nearest-ring path
    rects = [(0, 15, h, 16),  # a whole column, away from everything: FixSingleColumn
             (18, 2, 19, 9),  # part of a row: FixSingleRow
             (14, 26, 17, 29),  # a 3x3 block: clustered
             (0, w - 1, h, w)]  # the last column: too near the edge for FixSingleColumn
    op = FixBadPixelsList(bayer_phase(pattern), points, rects)
    hot = clean.copy()
    bad = np.zeros(clean.shape, bool)
    for r, c in points:
        bad[r, c] = True
    for t, le, b, ri in rects:
        bad[t:b, le:ri] = True
    hot[bad] = 4095
    before = hot.copy()
    fixed = apply_fix_bad_pixels(hot, op)
    assert np.array_equal(hot, before)  # a copy: the input is left alone
    assert fixed.dtype == hot.dtype
    assert np.array_equal(fixed[~bad], hot[~bad])
    assert np.array_equal(fixed[bad], clean[bad])


def test_isolated_hot_sensel_in_a_sloped_field_takes_its_neighbours_level():
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:20, 0:20]
    colour = np.tile(np.array([[0, 1], [1, 2]]), (10, 10))  # RGGB
    field = (1500 + 10 * rows + 5 * cols + 400 * colour + rng.integers(0, 3, (20, 20))).astype(np.uint16)
    hot = field.copy()
    hot[9, 9], hot[12, 13] = 4095, 0  # a hot blue sensel, a dead green one
    fixed = apply_fix_bad_pixels(hot, FixBadPixelsList(bayer_phase("RGGB"), [(9, 9), (12, 13)]))
    for r, c in ((9, 9), (12, 13)):
        same = [int(field[r + dy, c + dx]) for dy in range(-2, 3) for dx in range(-2, 3)
                if (dy or dx) and colour[r + dy, c + dx] == colour[r, c]]
        assert min(same) <= fixed[r, c] <= max(same)
        assert abs(int(fixed[r, c]) - int(field[r, c])) < 30
    unchanged = np.ones(field.shape, bool)
    unchanged[9, 9] = unchanged[12, 13] = False
    assert np.array_equal(fixed[unchanged], hot[unchanged])


def test_bad_column_and_row_in_a_sloped_field_follow_the_slope():
    rows, cols = np.mgrid[0:30, 0:30]
    colour = np.tile(np.array([[0, 1], [1, 2]]), (15, 15))
    field = (1500 + 10 * rows + 5 * cols + 400 * colour).astype(np.uint16)
    hot = field.copy()
    hot[:, 13], hot[24, 4:20] = 4095, 0
    fixed = apply_fix_bad_pixels(hot, FixBadPixelsList(1, [], [(0, 13, 30, 14), (24, 4, 25, 20)]))
    bad = hot != field
    assert np.abs(fixed[bad].astype(int) - field[bad]).max() <= 12  # vs 400 between colours
    assert np.array_equal(fixed[~bad], field[~bad])


def test_phase_decides_the_neighbours():
    """Under the wrong phase a red sensel is read as green, and the SDK's estimator mixes in
    its diagonal (blue) neighbours: the phase byte matters to a reader like the SDK."""
    clean = flat_mosaic("RGGB")
    hot = clean.copy()
    hot[10, 10] = 4095  # a red sensel
    right = apply_fix_bad_pixels(hot, FixBadPixelsList(bayer_phase("RGGB"), [(10, 10)]))
    wrong = apply_fix_bad_pixels(hot, FixBadPixelsList(bayer_phase("GRBG"), [(10, 10)]))
    assert right[10, 10] == LEVEL["R"]
    assert wrong[10, 10] == (LEVEL["R"] + LEVEL["B"]) // 2


def test_apply_refuses_what_is_not_a_mosaic():
    op = FixBadPixelsList(0, [(1, 1)])
    with pytest.raises(ValueError, match="2-D integer mosaic"):
        apply_fix_bad_pixels(np.zeros((4, 4), np.float32), op)
    with pytest.raises(ValueError, match="2-D integer mosaic"):
        apply_fix_bad_pixels(np.zeros((4, 4, 3), np.uint16), op)
