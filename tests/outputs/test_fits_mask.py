"""``badpixels.fits``, read with astropy: the kind bits at the defects, zeros elsewhere, rows
top-down, and the DARKRATE extension equal to stats.zarr's dark_rate, streamed a band at a time."""

import dataclasses
import re

import numpy as np
import pytest
import zarr
from astropy.io import fits

from pipeline import __version__
from pipeline.kinds import TABLE
from pipeline.layout import SensorLayout
from pipeline.outputs.fits_mask import NAME, write_fits_mask
from pipeline.outputs.registry import ExportContext, write_exports
from pipeline.records import StackMeta

from .conftest import H, W, defect

pytestmark = pytest.mark.filterwarnings("error")  # a card astropy must truncate is a bug

HOT, DEAD, STUCK, NOISY, COLUMN, ROW = 1, 2, 4, 8, 16, 32
META = StackMeta(dtype="uint16", layout=SensorLayout.of_file([[0, 1], [1, 2]], "RGBG"), raw=True,
                 make="Canon", model="EOS 6D", serial="012345", version="0.0.9")


def line(x, y, kind, length):
    return dataclasses.replace(defect(x, y, kind), length=length)


def stats_with_rate(folder, rate, chunk_rows=7):
    group = zarr.open_group(str(folder / "stats.zarr"), mode="w")
    group.create_array("dark_rate", shape=rate.shape, dtype=np.float32, chunks=(chunk_rows, *rate.shape[1:]),
                       compressors=None)
    group["dark_rate"][:] = rate
    return group["dark_rate"]


def rate_map(shape, seed=0):
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(-3, 1, shape).astype(np.float32)
    rate[3, 4] = np.nan  # an unfit sensel stays as it is
    rate[H - 1, W - 1] = 1234.5
    return rate


def test_bits_at_the_defects_and_zero_elsewhere(tmp_path, defects):
    p = write_fits_mask(defects, (H, W, 3), tmp_path / NAME, meta=META, n_frames=24)
    with fits.open(p) as hdul:
        hdul.verify("exception")
        assert len(hdul) == 1
        mask, hdr = hdul[0].data, hdul[0].header
    assert mask.dtype == np.uint8 and mask.shape == (H, W)  # one plane: the channels OR-ed
    assert (hdr["NAXIS1"], hdr["NAXIS2"]) == (W, H)
    expected = np.zeros((H, W), np.uint8)
    for (x, y), bits in {(0, 0): HOT, (W - 1, H - 1): DEAD, (5, 7): HOT | NOISY, (12, 3): STUCK, (13, 30): STUCK,
                         (20, 10): STUCK, (21, 11): NOISY}.items():
        expected[y, x] = bits  # numpy index [y, x] is our (y, x): top-down
    np.testing.assert_array_equal(mask, expected)
    assert hdr["ROWORDER"] == "TOP-DOWN" and "TOP-DOWN" in hdr["ROWORDER"]
    comments = " ".join(hdr["COMMENT"])
    assert "which is FITS row y+1" in comments and "index [y, x] is hotpixels' (y, x)" in comments
    assert "any of its 3 channels" in comments
    assert hdr["INSTRUME"] == "Canon EOS 6D" and hdr["SERIALNO"] == "012345" and hdr["NFRAMES"] == 24
    assert hdr["HOTPXVER"] == __version__ and __version__ in hdr["CREATOR"] and hdr["NCHANNEL"] == 3
    assert hdr["NBADPIX"] == 7


def test_every_kind_has_a_documented_bit():
    from pipeline.outputs import fits_mask

    assert {k.name for k in TABLE} == {"hot", "dead", "stuck", "noisy", "column", "row"}
    p_hdr = fits_mask._primary_header(np.zeros((2, 2), np.uint8), (2, 2), None, 1, 0, "x")
    for k, value in zip(("hot", "dead", "stuck", "noisy", "column", "row"), (HOT, DEAD, STUCK, NOISY, COLUMN, ROW)):
        n = value.bit_length() - 1
        assert fits_mask.bit(k) == n and p_hdr[f"BIT{n}"] == k
        assert any(c.startswith(f"bit {n} ({value}) {k}:") for c in p_hdr["COMMENT"])
        assert re.search(rf"^{n} +{value} +{k}:", fits_mask.__doc__, re.M)  # the docstring's table


def test_lines_set_their_bit_on_each_of_their_sensels(tmp_path):
    ctx = ExportContext(tmp_path, [line(7, 1, "column", 5), line(2, 30, "row", 3), defect(7, 3, "hot")],
                        (H, W), 10, META)
    assert write_exports(["fits_mask"], ctx) == [tmp_path / NAME]
    mask = fits.getdata(tmp_path / NAME)
    ys, xs = np.nonzero(mask)
    assert set(zip(xs.tolist(), ys.tolist())) == {(7, y) for y in (1, 3, 5, 7, 9)} | {(x, 30) for x in (2, 4, 6)}
    assert mask[3, 7] == COLUMN | HOT and mask[1, 7] == COLUMN and mask[30, 4] == ROW


@pytest.mark.parametrize("shape", [(H, W), (H, W, 3)])
def test_dark_rate_hdu_is_stats_zarr_array_exactly(tmp_path, defects, shape):
    rate = rate_map(shape)
    stats_with_rate(tmp_path, rate)
    meta = META if len(shape) == 2 else dataclasses.replace(META, layout=SensorLayout.of_file(None, "RGB"))
    ctx = ExportContext(tmp_path, defects, shape, 24, meta)
    (p,) = write_exports(["fits_mask"], ctx)
    with fits.open(p) as hdul:
        hdul.verify("exception")
        assert [h.name for h in hdul] == ["PRIMARY", "DARKRATE"]
        data, hdr = hdul["DARKRATE"].data, hdul["DARKRATE"].header
        assert data.dtype == np.dtype(">f4") and hdr["BUNIT"] == "DN/s" and hdr["ROWORDER"] == "TOP-DOWN"
        stored = zarr.open_group(str(tmp_path / "stats.zarr"), mode="r")["dark_rate"][:]
        planes = stored[None] if stored.ndim == 2 else np.moveaxis(stored, -1, 0)  # FITS [c, y, x]
        np.testing.assert_array_equal(data.reshape(planes.shape), planes)  # NaN where NaN, every bit
        assert data.shape == ((H, W) if len(shape) == 2 else (3, H, W))
        assert np.all(data[..., H - 1, W - 1] == 1234.5) and np.all(np.isnan(data[..., 3, 4]))
        assert "HDU 2 (DARKRATE)" in " ".join(hdul[0].header["COMMENT"])
    assert p.stat().st_size % 2880 == 0


class CountingRate:
    """A dark-rate array that records the rows of each read (a zarr array stands behind it)."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, rows):
        self.reads.append(len(range(*rows.indices(self.shape[0]))))
        return self.array[rows]


@pytest.mark.parametrize("shape", [(H, W), (H, W, 3)])
def test_band_by_band_gives_the_identical_file(tmp_path, defects, shape):
    rate = stats_with_rate(tmp_path, rate_map(shape, seed=1))
    whole = write_fits_mask(defects, shape, tmp_path / "whole.fits", meta=META, n_frames=3, dark_rate=rate,
                            band_rows=H).read_bytes()
    for band in (None, 1, 6, 7, 13):
        counting = CountingRate(rate)
        p = write_fits_mask(defects, shape, tmp_path / f"b{band}.fits", meta=META, n_frames=3, dark_rate=counting,
                            band_rows=band)
        assert p.read_bytes() == whole
        assert max(counting.reads) <= (band or H) and sum(counting.reads) == H  # each row read once, a band at a time


def test_no_dark_rate_no_extension_and_the_reason(tmp_path, defects):
    ctx = ExportContext(tmp_path, defects, (H, W), 24, META)
    (p,) = write_exports(["fits_mask"], ctx)
    with fits.open(p) as hdul:
        assert len(hdul) == 1
        assert "No DARKRATE HDU: no stats.zarr" in " ".join(hdul[0].header["COMMENT"])
    zarr.open_group(str(tmp_path / "stats.zarr"), mode="w").create_array("mean", shape=(H, W), dtype=np.float64)
    (p,) = write_exports(["fits_mask"], ctx)
    with fits.open(p) as hdul:
        assert len(hdul) == 1
        assert "fitted no dark rate" in " ".join(hdul[0].header["COMMENT"])


def test_empty_and_hostile_metadata_still_give_valid_fits(tmp_path):
    meta = dataclasses.replace(META, make="Caméra\n'x'", model="\x00Z" + "é" * 100, serial="")
    p = write_fits_mask([], (H, W), tmp_path / NAME, meta=meta)
    with fits.open(p) as hdul:
        hdul.verify("exception")
        assert not hdul[0].data.any() and "SERIALNO" not in hdul[0].header
        assert hdul[0].header["INSTRUME"].startswith("Camera")


def test_fits_mask_rejects_out_of_range_and_a_wrong_rate_shape(tmp_path):
    with pytest.raises(ValueError):
        write_fits_mask([defect(W, 0)], (H, W), tmp_path / NAME)
    with pytest.raises(ValueError):
        write_fits_mask([], (H, W), tmp_path / NAME, dark_rate=np.zeros((H, W + 1), np.float32))
    assert not (tmp_path / NAME).exists()
