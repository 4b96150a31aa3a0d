"""Multi-page TIFFs (a movie or a burst saved as one stack, as sCMOS capture programs write them):
every page is a frame, read exactly and alone (its byte range where it is stored whole and
uncompressed, tifffile's decoding where not), a file cut short keeps its whole pages, and an
sCMOS movie (``synth.synthesize_movie``) with a population of flickering sensels is scanned
exactly and the population found, at the sensor's border too."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pipeline import Config, scan
from pipeline.defect import read_csv
from pipeline.io import read_file, read_headers
from pipeline.io.tiff_pages import pages_of

from .cut_short import assert_whole_frames_kept

QUIET = {"progress": False, "log": lambda m: None}


def _pages(path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tif:
        return [page.asarray() for page in tif.series[0].pages]


@pytest.mark.parametrize("case", ["gray16", "rgb8", "zlib16", "lzw16", "packbits8", "imagej", "bigendian"])
def test_every_page_is_a_frame_read_exactly_and_alone(tmp_path, case):
    rng = np.random.default_rng(1)
    path = tmp_path / f"{case}.tif"
    if case == "rgb8":
        tifffile.imwrite(path, rng.integers(0, 256, (5, 9, 11, 3), dtype=np.uint8), photometric="rgb")
    elif case == "zlib16":
        tifffile.imwrite(path, rng.integers(0, 4096, (4, 9, 11), dtype=np.uint16), photometric="minisblack",
                         compression="zlib")
    elif case in ("lzw16", "packbits8"):  # the usual compressions of TIFFs in the field (imagecodecs')
        dtype, top, compression = (np.uint16, 4096, "lzw") if case == "lzw16" else (np.uint8, 256, "packbits")
        tifffile.imwrite(path, rng.integers(0, top, (4, 9, 11), dtype=dtype), photometric="minisblack",
                         compression=compression)
    elif case == "imagej":
        tifffile.imwrite(path, rng.integers(0, 4096, (3, 2, 9, 11), dtype=np.uint16), imagej=True,
                         metadata={"axes": "TCYX"})
    else:
        tifffile.imwrite(path, rng.integers(0, 65536, (6, 9, 11), dtype=np.uint16), photometric="minisblack",
                         byteorder=">" if case == "bigendian" else "<")
    want = _pages(path)
    headers = read_headers(str(path))
    assert [h.path for h in headers] == [f"{path}#frame={i}" for i in range(len(want))]
    assert all(h.shape == want[0].shape and h.dtype == want[0].dtype.name and not h.error for h in headers)
    # pages stored whole and uncompressed are read by their byte range; compressed ones by tifffile
    assert pages_of(str(path)).stored == (case not in ("zlib16", "lzw16", "packbits8"))
    digests = set()
    for h, page in zip(headers, want):
        out = np.zeros(page.shape, page.dtype.newbyteorder("="))
        pixels, digest = read_file(h.path, out)
        np.testing.assert_array_equal(pixels, page)
        assert pixels.dtype.isnative
        digests.add(digest)
    assert len(digests) == len(want)


@pytest.mark.parametrize("pages", [1, 4])
def test_a_float_tiff_normalised_to_0_1_gives_back_its_16_bit_values_and_a_calibrated_one_its_reason(tmp_path, pages):
    # Siril and PixInsight save 32-bit float TIFFs in 0..1 (red before: the whole scan stopped with
    # "Invalid integer data type 'f'"); a calibrated frame (below 0) is skipped, never rounded
    values = np.random.default_rng(3).integers(0, 65536, (pages, 9, 11), dtype=np.uint16)
    for name, data in (("norm.tif", values / 65535.0), ("calibrated.tif", values / 65535.0 - 0.01)):
        tifffile.imwrite(tmp_path / name, data.astype(np.float32).squeeze(), photometric="minisblack")
    norm = read_headers(str(tmp_path / "norm.tif"))
    assert len(norm) == pages and {h.dtype for h in norm} == {"uint16"} and not any(h.error for h in norm)
    for i, h in enumerate(norm):
        pixels, _ = read_file(h.path, np.zeros((9, 11), np.uint16))
        np.testing.assert_array_equal(pixels, values[i])
    calibrated = read_headers(str(tmp_path / "calibrated.tif"))[0]
    with pytest.raises(ValueError, match="a calibrated frame"):
        read_file(calibrated.path, np.zeros((9, 11), np.uint16))


def test_a_stack_written_a_page_per_call_is_every_page(tmp_path):
    """tifffile makes each ``write`` of a TiffWriter its own series (a capture script's stack):
    every page of one shape is a frame, not the first series' one page."""
    frames = np.random.default_rng(2).integers(0, 4096, (5, 9, 11), dtype=np.uint16)
    path = tmp_path / "appended.tif"
    with tifffile.TiffWriter(path) as writer:
        for frame in frames:
            writer.write(frame, photometric="minisblack")
    headers = read_headers(str(path))
    assert [h.path for h in headers] == [f"{path}#frame={i}" for i in range(5)]
    for h, frame in zip(headers, frames):
        np.testing.assert_array_equal(read_file(h.path)[0], frame)


def test_a_single_page_tiff_stays_one_frame_under_its_own_name(tmp_path):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, np.arange(99, dtype=np.uint16).reshape(9, 11))
    (header,) = read_headers(str(path))
    assert header.path == str(path) and header.shape == (9, 11) and not header.error


def test_a_stack_cut_short_keeps_its_whole_pages_and_lists_the_rest(tmp_path, local_client):
    frames = np.random.default_rng(3).integers(90, 110, (10, 12, 16), dtype=np.uint16)
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, frames, photometric="minisblack")
    offsets = [pages_of(str(whole)).place(i)[0] for i in range(10)]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.tif").write_bytes(whole.read_bytes()[: offsets[7] + 5])  # into page 7's data
    assert_whole_frames_kept(tmp_path, local_client, folder / "cut.tif", frames, 7)


def test_a_stack_that_declares_a_billion_frames_costs_what_it_holds(tmp_path):
    """tifffile takes a shaped stack's count from its description (a file cut short keeps it);
    a damaged one that declares far more than the file holds lists the rest as one lost line."""
    path = tmp_path / "liar.tif"
    tifffile.imwrite(path, np.zeros((3, 12, 16), np.uint16), photometric="minisblack", metadata=None,
                     description='{"shape": [1000000000, 12, 16]}')
    headers = read_headers(str(path))
    assert [h.error for h in headers[:3]] == ["", "", ""] and len(headers) == 4
    assert "holds 3 of its 1000000000 frames whole (frames 3 to 999999999, listed as one)" in headers[3].error


def test_an_scmos_movie_with_a_population_of_flickering_sensels_is_found_whole(tmp_path, local_client):
    """1 % of the sensels flicker (sCMOS sensors have thousands: telegraph of one and two sides,
    and Gaussian-noisy ones): each is reported noisy at its own sensel, also 1-3 px from another
    and on the sensor's outer rows and columns, and next to nothing else. Read as a demosaiced image would
    be, one report per 3 px blob and none within 8 px of the border, a fifth of them went."""
    from pipeline.synth import synthesize_movie

    truth = synthesize_movie(tmp_path / "movie", frames=120, size=(160, 160), share=0.01, seed=5)
    frames = tifffile.imread(tmp_path / "movie" / "movie.tif")
    result = scan([str(tmp_path / "movie")], tmp_path / "out", Config(), client=local_client, **QUIET)
    assert result.stats.n == len(frames) == 120
    np.testing.assert_array_equal(result.stats.mean[0], frames.mean(0))
    np.testing.assert_allclose(result.stats.m2[0], frames.var(0) * len(frames), rtol=1e-12)
    found = {(d.x, d.y): d.kind for d in read_csv(tmp_path / "out" / "defects.csv")}
    planted = {(d["x"], d["y"]) for d in truth["defects"]}
    assert len(set(found) - planted) <= 1  # the sensor's own read-noise tail may show one
    assert sum(found.get(p) == "noisy" for p in planted) >= 0.95 * len(planted)
    edge = [p for p in planted if min(p) < 8 or max(p) >= 160 - 8]
    assert edge and sum(found.get(p) == "noisy" for p in edge) >= 0.9 * len(edge)
    crowded = [p for p in planted if any(max(abs(p[0] - q[0]), abs(p[1] - q[1])) <= 3 for q in planted if q != p)]
    assert crowded and sum(found.get(p) == "noisy" for p in crowded) >= 0.9 * len(crowded)
