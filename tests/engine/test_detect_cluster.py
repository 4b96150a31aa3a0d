"""Detection on the workers, band by band from stats.zarr, equals detection in one process over
the whole statistics: the same defects, field for field, the same thresholds and stack kind;
and the report's maps and histograms reduced on the workers equal those of the whole maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from distributed import Client, Future

from pipeline.config import Config
from pipeline.detect import detect
from pipeline.detect.detector import BAND_VALUES
from pipeline.engine.detect import Here, detect_on_cluster
from pipeline.report.numbers import histogram, map_for_display, related_thresholds
from pipeline.state.store import (
    STATS_NAME,
    frame_days,
    frame_table,
    read_hot_set,
    read_manifest,
    read_stats,
    write_stats,
)

QUIET = {"progress": False, "log": lambda m: None}


def _fields(d) -> tuple:
    return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in vars(d).values())


def _both(out, runner, factor: int = 7, band_values: int = BAND_VALUES):
    """(in one process, on the workers, their prepared report numbers) of a saved stats folder,
    both in bands of ``band_values``."""
    stats, meta = read_stats(out)
    manifest = read_manifest(out)
    cfg = Config().detect
    if meta.black_level:
        import dataclasses

        cfg = dataclasses.replace(cfg, black_level=float(np.mean(meta.black_level)))
    frames = frame_table(manifest, meta, read_hot_set(out))
    days = frame_days(manifest) if meta.dates else None
    whole = detect(stats, cfg, layout=meta.layout, frames=frames, days=days, band_values=band_values)
    banded, prepared = detect_on_cluster(runner, str(out / STATS_NAME), stats.n, tuple(stats.pixel_shape), cfg,
                                         meta.layout, frames, days, factor, band_values=band_values)
    return stats, whole, banded, prepared


def _assert_same(stats, whole, banded, prepared, factor: int = 7):
    assert [_fields(d) for d in banded.defects] == [_fields(d) for d in whole.defects]
    assert banded.thresholds == whole.thresholds
    assert (banded.stack_kind, banded.stack_reason) == (whole.stack_kind, whole.stack_reason)
    assert banded.scores == {}  # no sensor-sized map comes back
    assert list(prepared.histograms) == list(whole.scores)
    for name, values in whole.scores.items():
        want = histogram(values, list(related_thresholds(name, whole.thresholds).values()))
        got = prepared.histograms[name]
        np.testing.assert_array_equal(got["counts"], want["counts"])
        np.testing.assert_array_equal(got["edges"], want["edges"])
        assert (got["note"], got["n"]) == (want["note"], want["n"])
    mean, m2 = stats.stream("value")
    np.testing.assert_array_equal(prepared.variance, map_for_display(m2, factor, "max", stats.n))
    np.testing.assert_allclose(prepared.mean, map_for_display(mean, factor, "mean"), rtol=1e-6)
    if whole.dark_rate is not None:
        np.testing.assert_array_equal(prepared.dark_rate, map_for_display(whole.dark_rate, factor, "max"))


@pytest.mark.slow
def test_a_dated_raw_collection_is_detected_alike_on_the_workers(tmp_path, local_client):
    """A camera's DNGs over two years (the physics model, onsets, lines, clusters), scanned for
    real, detected in one process and on the workers, in the same bands (forced small here: about
    100 bands), the same defects."""
    pytest.importorskip("pidng")
    from pipeline import scan
    from pipeline.synth import synthesize_collection

    synthesize_collection(tmp_path / "frames", frames=40, size=(640, 480), fmt="dng", seed=1)
    scan([str(tmp_path / "frames")], tmp_path / "out", Config(), client=local_client, detect_defects=False, **QUIET)
    stats, whole, banded, prepared = _both(tmp_path / "out", local_client, band_values=1 << 15)
    assert whole.dark_rate is not None and any(d.since for d in whole.defects)
    assert len(whole.defects) >= 20
    _assert_same(stats, whole, banded, prepared)


def test_darks_are_detected_alike_however_the_sensor_is_cut_into_bands(tmp_path, local_client):
    """Lens-cap darks of varied exposures with a population of defects, in one process, cut into
    bands of 4,096 and of 65,536 values: the same defects, field for field. The dark-current
    criterion floored a sensel's error by its band's median scatter (now its row's): the cluster's
    worker count, which cuts the bands, moved the many-defect darks' dark-current z's by up to
    0.2 %, and here the scores of most reports (a red test before)."""
    import dataclasses

    from pipeline import scan
    from pipeline.synth import synthesize_collection

    truth = synthesize_collection(tmp_path / "frames", frames=30, size=(160, 120), fmt="png16", seed=5,
                                  dark_fraction=1.0, population=0.02)
    scan([str(tmp_path / "frames")], tmp_path / "out", Config(), client=local_client, detect_defects=False, **QUIET)
    stats, meta = read_stats(tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    cfg = dataclasses.replace(Config().detect, black_level=float(truth["black_level"]))
    frames = frame_table(manifest, meta, read_hot_set(tmp_path / "out"))
    assert frames is not None and frames.physical
    got = [detect(stats, cfg, layout=meta.layout, frames=frames, days=frame_days(manifest), band_values=b).defects
           for b in (1 << 12, 1 << 16)]
    assert len(got[0]) > 200
    assert [_fields(d) for d in got[0]] == [_fields(d) for d in got[1]]


def test_partial_lines_of_a_mosaic_are_found_alike_band_by_band(tmp_path, local_client):
    """Darks of a mosaic with a weak partial column and row (each sensel 1.5 sigma): the column
    crosses every band, so its scan goes from band to band; the row lies in one."""
    from pipeline.records import StackMeta
    from tests.detect.test_lines import _stack_with_lines

    stats, layout = _stack_with_lines(0, True)
    write_stats(tmp_path, stats, StackMeta(dtype="uint16", layout=layout))
    for runner in (local_client, Here()):
        got = _both(tmp_path, runner, band_values=1 << 11)  # bands of 16 rows
        assert sorted(d.kind for d in got[1].defects if d.kind in ("column", "row")) == ["column", "row"]
        _assert_same(*got)


def test_rgb_photos_are_detected_alike_on_the_workers(tmp_path, local_client):
    """Demosaiced 8-bit photos (three planes, blobs ranked by their luma, no lines)."""
    from pipeline import scan
    from pipeline.synth import synthesize

    synthesize(tmp_path / "frames", frames=12, size=(200, 150), fmt="jpeg", seed=3)
    scan([str(tmp_path / "frames")], tmp_path / "out", Config(), client=local_client, detect_defects=False, **QUIET)
    got = _both(tmp_path / "out", local_client, factor=3)
    assert got[1].defects
    _assert_same(*got, factor=3)
    # the scan decided photos or darks from its tiles' samples, as detection decides from the whole
    from pipeline.detect.stack_kind import classify_stack
    from pipeline.state.store import read_stack_kind

    assert read_stack_kind(tmp_path / "out") == classify_stack(got[0]) == ("photos", got[1].stack_reason)


def test_bands_come_in_whole_rounds_of_the_worker_threads(local_client):
    """Each pass waits for its last band: 3 bands on 2 threads take as long as 4 smaller ones."""
    from pipeline.engine.detect import Here, even_bands

    threads = sum(local_client.nthreads().values())
    for values, target in ((12_000_000, 1 << 22), (134_000_000, 1 << 22), (1000, 1 << 22)):
        per_band = even_bands(values, target, local_client)
        bands = -(-values // per_band)
        assert bands % threads == 0 and per_band <= target
        assert even_bands(values, target, Here(1)) == -(-values // -(-values // target))  # one thread: as asked


def test_raw_photos_without_exposures_leave_the_unused_sums_on_disk(tmp_path, local_client):
    """Raw photos whose files give no exposure: the scan keeps the model's sums with each frame's
    mean level standing in (for darks, which the stack turns out not to be), and detection on the
    workers does not read them back (``unread``: most of a band's bytes); the same defects."""
    pytest.importorskip("pidng")
    from pipeline import scan
    from pipeline.engine.detect import unread
    from pipeline.stats.model import EXPOSURE_SUMS
    from pipeline.synth import synthesize

    synthesize(tmp_path / "frames", frames=10, size=(160, 120), fmt="dng", dark=False, seed=0)
    scan([str(tmp_path / "frames")], tmp_path / "out", Config(), client=local_client, detect_defects=False, **QUIET)
    stats, whole, banded, prepared = _both(tmp_path / "out", local_client, band_values=1 << 12)
    assert all(k in stats.extra for k in EXPOSURE_SUMS)  # kept by the scan
    assert whole.stack_kind == "photos" and whole.dark_rate is None and whole.defects
    from pipeline.detect.detector import plan_detection

    meta = read_stats(tmp_path / "out")[1]
    frames = frame_table(read_manifest(tmp_path / "out"), meta, read_hot_set(tmp_path / "out"))
    assert frames is not None and not frames.physical  # the frames' mean levels stand in
    plan = plan_detection(stats, Config().detect, meta.layout, None, frames)
    assert set(EXPOSURE_SUMS) <= set(unread(plan))
    _assert_same(stats, whole, banded, prepared)


class _ScoredElsewhere(Client):
    """A client that scores each band on another worker than the one its maps are on (as work
    stealing may move a task to an idle worker: that worker scores a copy) and runs every other
    pass of the band on the maps' own worker."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.home: dict[str, str] = {}  # a band's future -> the worker its maps were made on

    def _home_of(self, future) -> str:
        if future.key not in self.home:
            future.result()
            self.home[future.key] = sorted(self.who_has([future])[future.key])[0]
        return self.home[future.key]

    def submit(self, fn, *args, **kwargs):
        bands = [a for a in args if isinstance(a, Future)]
        if not bands:
            return super().submit(fn, *args, **kwargs)
        home = self._home_of(bands[0])
        where = next(w for w in sorted(self.nthreads()) if w != home) if fn.__name__ == "score_task" else home
        future = super().submit(fn, *args, workers=[where], allow_other_workers=False, **kwargs)
        self.home[future.key] = home
        return future


def test_a_band_scored_on_another_worker_is_detected_alike(tmp_path, local_client):
    """A band's scoring run on a copy of its maps on another worker: the later passes (lines,
    histograms) take the scored band, not the unscored original left on the first worker."""
    from pipeline.records import StackMeta
    from tests.detect.test_lines import _stack_with_lines

    stats, layout = _stack_with_lines(0, True)
    write_stats(tmp_path, stats, StackMeta(dtype="uint16", layout=layout))
    assert len(local_client.nthreads()) == 2
    with _ScoredElsewhere(local_client.scheduler.address, set_as_default=False) as displaced:
        got = _both(tmp_path, displaced, band_values=1 << 11)
    assert sorted(d.kind for d in got[1].defects if d.kind in ("column", "row")) == ["column", "row"]
    _assert_same(*got)
