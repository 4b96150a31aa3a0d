"""SER videos: the header's fields, every frame read exactly from its own byte range, the byte
order read from the data whatever the flag says, damaged files, and a video scanned over every
worker with its defects found where they were planted."""


import numpy as np
import pytest

from pipeline import Config, scan
from pipeline.defect import read_csv
from pipeline.engine.plan import partitions, segments
from pipeline.io import read_file, read_header, read_headers, read_pixels
from pipeline.io.ser import byte_order, parse_header
from pipeline.state.files import read_files_csv

from .cut_short import assert_whole_frames_kept
from .serfile import write_ser

QUIET = {"progress": False, "log": lambda m: None}
START = 1_750_000_000.0  # 2025-06-15


def darks(n: int, shape=(40, 50), level=600.0, dtype=np.uint16, seed=0) -> np.ndarray:
    frames = np.random.default_rng(seed).normal(level, 20, (n, *shape))
    return np.clip(np.rint(frames), 0, np.iinfo(dtype).max).astype(dtype)


def test_the_header_gives_layout_camera_and_each_frames_time(tmp_path):
    frames = darks(6)
    path = write_ser(tmp_path / "a.ser", frames, "GBRG", depth=12, times=[START + 0.02 * i for i in range(6)])
    headers = read_headers(str(path))
    assert [h.path for h in headers] == [f"{path}#frame={i}" for i in range(6)]
    h = headers[3]
    assert (h.shape, h.dtype, h.layout.name, h.model, h.format, h.error) == (
        (40, 50), "uint16", "GBRG", "ZWO ASI462MC", "ser", "")
    assert h.white_level == 4095  # 12-bit values stay under 4095: that is where they clip
    assert [round(x.time - START, 3) for x in headers] == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
    assert read_header(str(path)).path == f"{path}#frame=0"
    for i, x in enumerate(headers):
        pixels, digest = read_file(x.path)
        assert pixels.dtype == np.uint16
        np.testing.assert_array_equal(pixels, frames[i])
    # no trailer: every frame has the header's UTC date
    bare = write_ser(tmp_path / "b.ser", frames, "MONO", start=START)
    assert {x.time for x in read_headers(str(bare))} == {START}
    assert read_headers(str(bare))[0].layout.name == ""


def test_colour_videos_give_channels_in_rgb_order(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    for order in ("RGB", "BGR"):
        path = write_ser(tmp_path / f"{order}.ser", rgb, order)
        headers = read_headers(str(path))
        assert headers[0].shape == (10, 12, 3) and headers[0].dtype == "uint8"
        for i, h in enumerate(headers):
            np.testing.assert_array_equal(read_pixels(h.path), rgb[i])


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("flag", [0, 1])
def test_the_byte_order_comes_from_the_data_whatever_the_flag(tmp_path, big_endian, flag):
    frames = darks(4)
    path = write_ser(tmp_path / "v.ser", frames, "RGGB", big_endian=big_endian, flag=flag)
    for i, h in enumerate(read_headers(str(path))):
        np.testing.assert_array_equal(read_pixels(h.path), frames[i])


def test_a_flat_frame_falls_back_to_the_flag_as_writers_use_it():
    flat = np.full((8, 8), 0x0102, np.uint16)
    head = bytearray(write_header_bytes(8, 8, flag=0))
    layout = parse_header(bytes(head), 178 + flat.nbytes)
    assert byte_order(flat.astype("<u2").tobytes(), layout) == "<"  # 0: little-endian, as Siril reads it
    head[22] = 1
    assert byte_order(flat.astype("<u2").tobytes(), parse_header(bytes(head), 178 + flat.nbytes)) == ">"


def write_header_bytes(width: int, height: int, flag: int) -> bytes:
    import struct

    head = bytearray(178)
    head[:14] = b"LUCAM-RECORDER"
    struct.pack_into("<7i", head, 14, 0, 0, flag, width, height, 16, 1)
    return bytes(head)


def test_damaged_and_foreign_files_are_refused_with_the_reason(tmp_path):
    frames = darks(6)
    whole = write_ser(tmp_path / "whole.ser", frames, "MONO").read_bytes()
    cut = tmp_path / "cut.ser"
    cut.write_bytes(whole[: 178 + 3 * frames[0].nbytes + 11])
    headers = read_headers(str(cut))
    assert [h.error for h in headers[:3]] == ["", "", ""]
    assert all("holds 3 of its 6 frames whole" in h.error for h in headers[3:])
    with pytest.raises(ValueError, match="truncated in frame 3"):
        read_pixels(f"{cut}#frame=3")
    # FrameCount 0 (the capture program crashed before writing it): counted from the size
    unwritten = write_ser(tmp_path / "crashed.ser", frames, "MONO", declared=0)
    assert len(read_headers(str(unwritten))) == 6
    cmy = write_ser(tmp_path / "cmy.ser", frames, "CYYM")
    assert "cyan-magenta-yellow" in read_headers(str(cmy))[0].error
    junk = tmp_path / "junk.ser"
    junk.write_bytes(b"not a video" * 10)
    assert "178-byte header" in read_headers(str(junk))[0].error
    (tmp_path / "empty.ser").write_bytes(b"")
    assert read_headers(str(tmp_path / "empty.ser"))[0].error == "empty file"


def test_one_video_is_cut_across_every_worker_thread(tmp_path):
    path = write_ser(tmp_path / "v.ser", darks(100, (8, 8)), "MONO")
    headers = read_headers(str(path))
    (segment,) = segments(headers, 1024, ())
    parts, _ = partitions(segment, threads=4, batch_size=8, dtype="uint16", counted_by_size={})
    assert len(parts) == 4
    assert [len([p for batch in part for p in batch]) for part in parts] == [25, 25, 25, 25]


def test_a_video_is_scanned_exactly_and_its_defects_found_where_planted(tmp_path, local_client):
    n, height, width = 120, 24, 30
    rng = np.random.default_rng(2)
    frames = rng.normal(40, 3, (n, height, width))
    frames[:, 7, 11] += 60  # hot: odd row, odd column of RGGB, blue
    frames[:, 12, 20] = 255  # stuck at the top of 8 bits: even row, even column, red
    frames[rng.random(n) < 0.3, 16, 5] += 40  # telegraph, one-sided, in 30 % of frames: green
    frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    folder = tmp_path / "videos"
    folder.mkdir()
    write_ser(folder / "first.ser", frames[:70], "RGGB", times=[START + 0.05 * i for i in range(70)])
    write_ser(folder / "second.ser", frames[70:], "RGGB", times=[START + 60 + 0.05 * i for i in range(50)])
    config = Config()
    config.scan.batch_size = 8
    logged: list[str] = []
    result = scan([str(folder)], tmp_path / "out", config, client=local_client, progress=False, log=logged.append)
    assert "2 files hold 120 frames (2 videos, cubes or TIFF stacks are read frame by frame)" in logged
    assert result.stats.n == n
    np.testing.assert_array_equal(result.stats.mean[0], frames.mean(0))
    np.testing.assert_allclose(result.stats.m2[0], frames.var(0) * n, rtol=1e-12)
    files = read_files_csv(tmp_path / "out")
    assert len(files) == n and {s for _, s, _ in files} == {"used"}
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    assert (found[(11, 7)].kind, found[(11, 7)].color) == ("hot", "B")
    assert (found[(20, 12)].kind, found[(20, 12)].color) == ("stuck", "R")
    assert (found[(5, 16)].kind, found[(5, 16)].color) == ("noisy", "G")
    # Siril flips a SER frame's rows into memory as it does a TIFF's (ser_read_frame ends with
    # fits_flip_top_to_bottom), so its list counts rows as stored, unlike a FITS file's
    assert "P 11 7 H" in (tmp_path / "out" / "siril.lst").read_text().splitlines()


def test_a_truncated_video_keeps_its_whole_frames_and_lists_the_rest(tmp_path, local_client):
    frames = darks(20, (12, 16), level=80, dtype=np.uint8, seed=3)
    folder = tmp_path / "v"
    folder.mkdir()
    data = write_ser(folder / "cut.ser", frames, "MONO").read_bytes()
    (folder / "cut.ser").write_bytes(data[: 178 + 15 * frames[0].nbytes + 3])
    assert_whole_frames_kept(tmp_path, local_client, folder / "cut.ser", frames, 15)
