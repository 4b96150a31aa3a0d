"""Hostile files (issue 17): no file crashes a scan, hangs it, or makes a process exceed its memory.

Each file is read in a sandbox process (``Sandbox``: ``python -m tests.io.test_hostile``) the way
a worker reads it, ``read_headers`` then ``read_file`` of each readable frame, under two bounds:

- memory: the sandbox sets ``RLIMIT_AS`` before each call to its address space at that moment plus a budget
  (``PROBE_BUDGET`` for a probe; ``DECODE_BUDGET`` plus ``BYTES_PER_VALUE`` per value the header
  declares for a decode). The kernel refuses any allocation past it, which Python raises as a
  MemoryError: the sandbox reports one wherever it was caught. glibc keeps one malloc arena
  (``MALLOC_ARENA_MAX``) so that a thread's arena reservation does not count as pixels.
- time: the test waits ``TIMEOUT`` seconds for each file (more for a large declared frame), then
  kills the sandbox and fails; a sandbox that dies (a native crash) fails with its signal.

The fuzz tests start from small valid files of every format and let hypothesis cut them short
and overwrite or flip bytes anywhere. Whatever happens must be a header of a declared shape and
then pixels of that shape, or an Exception (which the scan turns into a one-line reason).
"""

from __future__ import annotations

import faulthandler
import io
import json
import os
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.io import read_file, read_headers
from pipeline.io.limits import MAX_FILE_BYTES, MAX_MEGAPIXELS, MAX_MISSING_FRAMES, MAX_PIXELS, TooLarge
from pipeline.io.read import content_digest
from pipeline.io.source import frame_ref

ROOT = Path(__file__).resolve().parents[2]
PROBE_BUDGET = 256 << 20  # bytes of address space a probe may take: headers, never pixels
DECODE_BUDGET = 256 << 20
BYTES_PER_VALUE = 24  # the file's bytes, the decoder's array, a float64 copy (exact.as_stored)
TIMEOUT = 10.0  # seconds for one file, plus 1 s per 20 M values it declares
EXAMPLES = 200

# ---------------------------------------------------------------- small valid files of each format


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, colour: int = 0, depth: int = 8, rows: bytes = b"") -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height``, with ``rows`` (filtered rows) deflated."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows or b"\0" * 64))
            + png_chunk(b"IEND", b""))


def with_sof(jpeg: bytes, width: int, height: int) -> bytes:
    data = bytearray(jpeg)
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def tiff_tags(data: bytes, values: dict[int, int]) -> bytes:
    """``data`` with the (SHORT or LONG, inline) tags ``values`` rewritten in every IFD."""
    import tifffile

    out = bytearray(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        for page in tif.pages:
            for tag in page.tags:
                if tag.code in values:
                    size = {3: 2, 4: 4}[tag.dtype]
                    out[tag.valueoffset : tag.valueoffset + size] = values[tag.code].to_bytes(size, "little")
    return bytes(out)


def fits_declaring(axes: tuple[int, ...], bitpix: int = 16, body: int = 2880) -> bytes:
    """A FITS primary header of NAXISn ``axes`` (NAXIS1 first), then ``body`` bytes of data."""
    cards = [("SIMPLE", "T"), ("BITPIX", str(bitpix)), ("NAXIS", str(len(axes)))]
    cards += [(f"NAXIS{i + 1}", str(n)) for i, n in enumerate(axes)] + [("BZERO", "32768")]
    text = "".join(f"{k:<8}= {v:>20}".ljust(80) for k, v in cards) + "END".ljust(80)
    return text.ljust(-(-len(text) // 2880) * 2880).encode() + b"\0" * body


def ser_declaring(width: int, height: int, frames: int, body: int = 64) -> bytes:
    head = bytearray(178)
    head[:14] = b"LUCAM-RECORDER"
    struct.pack_into("<7i", head, 14, 0, 0, 0, width, height, 8, frames)
    return bytes(head) + b"\7" * body


def xisf_declaring(geometry: str, block: bytes, compression: str = "") -> bytes:
    at = 4096
    attrs = f'geometry="{geometry}" sampleFormat="UInt16" location="attachment:{at}:{len(block)}"'
    attrs += f' compression="{compression}"' if compression else ""
    xml = f'<xisf version="1.0" xmlns="http://www.pixinsight.com/xisf"><Image {attrs}/></xisf>'.encode()
    head = b"XISF0100" + len(xml).to_bytes(4, "little") + b"\0\0\0\0" + xml
    return head + b"\0" * (at - len(head)) + block


SEEDS = ("rgb.jpg", "gray_progressive.jpg", "cmyk.jpg", "rgb.png", "gray16.png", "palette.png", "rgb16.png",
         "gray16.tif", "rgb_deflate.tif", "gray16_lzw.tif", "pages.tif", "cfa.dng", "u16.fits", "f32.fits", "cube.fits", "rice.fz",
         "bayer12.ser", "bgr.ser", "cfa.xisf", "zlib_shuffled.xisf", "lz4.xisf", "zstd.xisf")


@lru_cache(maxsize=1)
def seeds() -> dict[str, bytes]:
    """Small valid files, one per format and variant the readers take different paths for."""
    import tempfile

    import imageio.v3 as iio
    import tifffile
    from astropy.io import fits
    from PIL import Image

    from pipeline.synth.writers import dng_bytes, dng_tags

    from .serfile import write_ser
    from .xisffile import write_xisf

    rng = np.random.default_rng(17)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    gray16 = rng.integers(0, 4096, (24, 32), dtype=np.uint16)

    def pillow(image, fmt: str, **kwargs) -> bytes:
        out = io.BytesIO()
        image.save(out, fmt, **kwargs)
        return out.getvalue()

    def tiff(array, **kwargs) -> bytes:
        out = io.BytesIO()
        tifffile.imwrite(out, array, **kwargs)
        return out.getvalue()

    def hdus(*items) -> bytes:
        out = io.BytesIO()
        fits.HDUList(list(items)).writeto(out)
        return out.getvalue()

    rows16 = b"".join(b"\0" + r.astype(">u2").tobytes() for r in rgb.astype(np.uint16) * 257)
    files = {
        "rgb.jpg": iio.imwrite("<bytes>", rgb, extension=".jpg", quality=90),
        "gray_progressive.jpg": pillow(Image.fromarray(rgb[..., 0]), "JPEG", progressive=True),
        "cmyk.jpg": pillow(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "rgb.png": iio.imwrite("<bytes>", rgb, extension=".png"),
        "gray16.png": pillow(Image.fromarray(gray16), "PNG"),
        "palette.png": pillow(Image.fromarray(rgb).convert("P"), "PNG"),
        "rgb16.png": png_declaring(32, 24, colour=2, depth=16, rows=rows16),
        "gray16.tif": tiff(gray16, photometric="minisblack"),
        "rgb_deflate.tif": tiff(rgb, photometric="rgb", compression="zlib"),
        "gray16_lzw.tif": tiff(gray16, photometric="minisblack", compression="lzw"),  # imagecodecs' native decoder
        "pages.tif": tiff(np.stack([gray16, gray16]), photometric="minisblack"),
        "cfa.dng": dng_bytes(dng_tags(gray16.shape, 64, 4095, (2.0, 1.0, 1.5), "Test", "Cam"), gray16),
        "u16.fits": hdus(fits.PrimaryHDU(gray16)),
        "f32.fits": hdus(fits.PrimaryHDU((gray16 / 4095.0).astype(np.float32))),
        "cube.fits": hdus(fits.PrimaryHDU(np.stack([gray16] * 4))),
        "rice.fz": hdus(fits.PrimaryHDU(), fits.CompImageHDU(gray16, compression_type="RICE_1")),
    }
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        files["bayer12.ser"] = write_ser(t / "a.ser", np.stack([gray16] * 3), colour="RGGB", depth=12,
                                         times=[1.7e9, 1.7e9 + 1, 1.7e9 + 2]).read_bytes()
        files["bgr.ser"] = write_ser(t / "b.ser", np.stack([rgb] * 2), colour="BGR").read_bytes()
        files["cfa.xisf"] = write_xisf(t / "a.xisf", gray16, cfa="RGGB").read_bytes()
        files["zlib_shuffled.xisf"] = write_xisf(t / "b.xisf", gray16, codec="zlib+sh").read_bytes()
        files["lz4.xisf"] = write_xisf(t / "c.xisf", rgb, codec="lz4").read_bytes()
        files["zstd.xisf"] = write_xisf(t / "d.xisf", rgb, codec="zstd", planar=False).read_bytes()
    return files


# ---------------------------------------------------------------- the sandbox


def _address_space() -> int:
    return int(re.search(r"VmSize:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024


def serve() -> None:
    """The sandbox: a JSON request per line on stdin, a ``RESULT`` line on the protocol fd."""
    import pipeline.io.read as read_module
    from pipeline.records import failure_reason

    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the protocol
    faulthandler.enable()  # a native crash leaves its Python stack in stderr, which the test shows
    caught: list[BaseException] = []

    def recording(exc: BaseException) -> str:
        caught.append(exc)
        return failure_reason(exc)

    def send(line: str) -> None:
        protocol.write(line + "\n")
        protocol.flush()

    read_module.failure_reason = recording  # read_headers' one place where an error becomes a reason
    _, hard = resource.getrlimit(resource.RLIMIT_AS)

    def bounded(budget: int) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + budget, hard))

    for line in sys.stdin:
        request = json.loads(line)
        caught.clear()
        result: dict = {"decoded": [], "memory": False}
        try:
            bounded(PROBE_BUDGET)
            headers = read_headers(request["path"])
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        result["count"] = len(headers)
        result["headers"] = [{"path": h.path, "shape": list(h.shape), "dtype": h.dtype, "error": h.error}
                             for h in headers[:3] + headers[3:][-2:]]
        result["memory"] = any(out_of_memory(e) for e in caught)
        readable = [h for h in headers if not h.error]
        good = list({h.path: h for h in readable[:1] + readable[-1:]}.values())  # the first and last frame
        send(f"PROBED {sum(int(np.prod(h.shape)) for h in good)}")  # the test's deadline grows with it
        for h in good:
            entry: dict = {"path": h.path, "declared": list(h.shape), "dtype_declared": h.dtype}
            try:
                bounded(DECODE_BUDGET + BYTES_PER_VALUE * int(np.prod(h.shape)))
                pixels, _ = read_file(h.path)
                entry.update(shape=list(pixels.shape), dtype=pixels.dtype.name)
            except Exception as exc:  # what the scan turns into a reason
                result["memory"] |= out_of_memory(exc)
                entry.update(reason=failure_reason(exc), type=type(exc).__name__)
            except BaseException as exc:  # what would escape the scan's read task
                entry.update(escaped=f"{type(exc).__name__}: {exc}")
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
            result["decoded"].append(entry)
        send("RESULT " + json.dumps(result))


def out_of_memory(exc: BaseException) -> bool:
    """A failed allocation, as Python (MemoryError) or a library (LibRaw's, zstd's) reports one."""
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or "memory" in text or "allocat" in text


class Sandbox:
    """A ``serve`` process, restarted after a crash or a hang; calling it reads one file there."""

    def __init__(self, log: Path):
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.buffer = b""

    def start(self) -> None:
        env = {**os.environ, "MALLOC_ARENA_MAX": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.io.test_hostile"], cwd=ROOT, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, bufsize=0)
        self.buffer = b""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            self.proc = None

    def __call__(self, path: Path, timeout: float = TIMEOUT) -> dict:
        """What ``serve`` says of the file at ``path``; or ``hang`` where the probe takes more than
        ``timeout`` s (the decodes, as much again plus 1 s per 20 M values declared); or ``crash``."""
        if self.proc is None:
            self.start()
            self.warm_up()
        assert self.proc is not None and self.proc.stdin is not None
        start = time.monotonic()
        deadline = start + timeout
        try:
            self.proc.stdin.write((json.dumps({"path": str(path)}) + "\n").encode())
        except BrokenPipeError:  # it died since the last file: _line reports how
            pass
        while True:
            line = self._line(deadline)
            if isinstance(line, dict):
                return line
            if line.startswith("PROBED "):
                deadline = time.monotonic() + timeout + int(line.split()[1]) / 20e6
            elif line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
                result["seconds"] = time.monotonic() - start
                return result

    def _line(self, deadline: float) -> str | dict:
        assert self.proc is not None and self.proc.stdout is not None
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                self.stop()
                return {"hang": True}
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                code = self.proc.wait()
                self.stop()
                tail = self.log.read_text(errors="replace")[-4000:]
                return {"crash": signal.Signals(-code).name if code < 0 else code, "stderr": tail}
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def warm_up(self) -> None:
        """Every reader's modules imported, every lazy path taken once, before any budget counts."""
        folder = self.log.parent / "warm"
        folder.mkdir(exist_ok=True)
        for name, data in seeds().items():
            (folder / name).write_bytes(data)
            self(folder / name, timeout=120)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    if not Path("/proc/self/status").exists():
        pytest.skip("the sandbox bounds memory with RLIMIT_AS against /proc/self/status: Linux only")
    box = Sandbox(tmp_path_factory.mktemp("sandbox") / "stderr.log")
    yield box
    box.stop()


def assert_contained(result: dict, what: str) -> None:
    """The file was read as a scan must read any file: no crash, no hang, no allocation past the
    budget, headers of a declared shape, then pixels of that shape or an Exception's reason."""
    assert "crash" not in result, f"{what}: the reading process died ({result['crash']}): {result.get('stderr')}"
    assert "hang" not in result, f"{what}: no answer in time (TIMEOUT)"
    assert not result["memory"], f"{what}: an allocation past the memory budget: {result}"
    for h in result["headers"]:
        assert h["error"] or h["shape"], f"{what}: a header with neither a shape nor an error: {h}"
        assert "\n" not in h["error"], f"{what}: a reason of more than one line: {h['error']!r}"
    for d in result["decoded"]:
        assert "escaped" not in d, f"{what}: {d['escaped']} would escape the scan's read task"
        if "reason" in d:
            assert d["reason"] and "\n" not in d["reason"], f"{what}: {d}"
        else:
            assert (d["shape"], d["dtype"]) == (d["declared"], d["dtype_declared"]), f"{what}: {d}"


# ---------------------------------------------------------------- fuzz: every reader, cut and damaged

edit = st.tuples(st.integers(min_value=0), st.sampled_from(["flip", "byte", "word"]), st.integers(0, 2**32 - 1))
damage = st.tuples(st.lists(edit, max_size=6), st.none() | st.floats(0, 1))


def damaged(data: bytes, how) -> bytes:
    """``data`` with the edits applied (a bit flipped, a byte or 4 bytes overwritten at a position
    taken modulo the length), then cut at a fraction of its length."""
    edits, cut = how
    out = bytearray(data)
    for position, kind, value in edits:
        at = position % len(out)
        if kind == "flip":
            out[at] ^= 1 << (value % 8)
        elif kind == "byte":
            out[at] = value & 0xFF
        else:
            out[at : at + 4] = value.to_bytes(4, "little")[: len(out) - at]
    return bytes(out[: int(len(out) * cut)] if cut is not None else out)


@pytest.mark.parametrize("name", SEEDS)
@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=60), derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(how=damage)
def test_no_damaged_file_crashes_hangs_or_bloats_a_reader(sandbox, tmp_path, name, how):
    path = tmp_path / f"{time.monotonic_ns()}_{name}"  # a new name: the SER reader caches by path, size and time
    path.write_bytes(damaged(seeds()[name], how))
    try:
        assert_contained(sandbox(path), f"{name} damaged by {how}")
    finally:
        path.unlink()


def test_every_seed_reads_whole(sandbox, tmp_path):
    """The fuzz starts from files every reader reads: each gives its pixels of its declared shape."""
    assert tuple(seeds()) == SEEDS
    for name, data in seeds().items():
        (tmp_path / name).write_bytes(data)
        result = sandbox(tmp_path / name)
        assert_contained(result, name)
        assert all(not h["error"] for h in result["headers"]), result
        assert all("shape" in d for d in result["decoded"]), result
        if name == "pages.tif":  # a stack: each page is a frame of its own
            assert [h["path"].rsplit("#", 1)[-1] for h in result["headers"]] == ["frame=0", "frame=1"], result


# ---------------------------------------------------------------- declared sizes no memory holds


def bombs() -> dict[str, tuple[str, bytes, str]]:
    """name -> (file name, a file of a few KB declaring far more than a sensor, what it declares)."""
    jpeg = seeds()["rgb.jpg"]
    return {
        "png": ("bomb.png", png_declaring(40000, 40000), "40000 x 40000 pixels (1600 MP)"),
        "png just over": ("over.png", png_declaring(20001, 10000), "20001 x 10000 pixels (200.01 MP)"),
        "png past Pillow's own refusal": ("huge.png", png_declaring(2**31 - 1, 1), "2147483647 x 1 pixels"),
        "jpeg": ("bomb.jpg", with_sof(jpeg, 65000, 65000), "65000 x 65000 pixels (4225 MP)"),
        "jpeg between Pillow's warning and error": ("mid.jpg", with_sof(jpeg, 15000, 15000), "(225 MP)"),
        "tiff": ("bomb.tif", tiff_tags(seeds()["gray16.tif"], {256: 100000, 257: 100000}), "(10000 MP)"),
        "dng": ("bomb.dng", tiff_tags(seeds()["cfa.dng"], {256: 20000, 257: 20000, 322: 20000, 323: 20000}),
                "20000 x 20000 pixels (400 MP)"),
        "fits": ("bomb.fits", fits_declaring((100000, 100000)), "100000 x 100000 pixels"),
        "fits float": ("bomb32.fits", fits_declaring((100000, 100000), bitpix=-32), "(10000 MP)"),
        "fits cube planes": ("bomb_cube.fits", fits_declaring((30000, 30000, 5)), "30000 x 30000 pixels"),
        "ser": ("bomb.ser", ser_declaring(100000, 100000, 1), "100000 x 100000 pixels"),
        "xisf": ("bomb.xisf", xisf_declaring("100000:100000:1", b"\0" * 64), "100000 x 100000 pixels"),
        "xisf channels": ("wide.xisf", xisf_declaring("10000:10000:16", b"\0" * 64), "of 16 values"),
    }


@pytest.mark.parametrize("case", sorted(bombs()))
def test_a_declared_bomb_is_refused_with_the_limit_before_anything_is_allocated(sandbox, tmp_path, case):
    fname, data, declares = bombs()[case]
    path = tmp_path / fname
    path.write_bytes(data)
    result = sandbox(path)
    assert_contained(result, case)
    (header,) = result["headers"]
    assert declares in header["error"] and "than any sensor this tool reads" in header["error"], header
    assert f"limit {MAX_MEGAPIXELS} MP" in header["error"]
    assert result["seconds"] < 5


@pytest.mark.parametrize("case", sorted(bombs()))
def test_a_file_that_becomes_a_bomb_after_its_probe_is_refused_by_the_decode(tmp_path, case):
    """The header read fine, then the file changed: the decode checks what it is about to allocate."""
    fname, data, declares = bombs()[case]
    kind = {".png": "rgb.png", ".jpg": "rgb.jpg", ".tif": "gray16.tif", ".dng": "cfa.dng", ".fits": "u16.fits",
            ".ser": "bayer12.ser", ".xisf": "cfa.xisf"}[Path(fname).suffix]
    path = tmp_path / fname
    path.write_bytes(seeds()[kind])
    (header, *_) = read_headers(str(path))
    assert not header.error
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=re.escape(declares)):
            read_file(header.path)
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


def test_pillow_speaks_only_past_our_limit_and_never_first(tmp_path):
    """Pillow warns from 89 MP by default and refuses from 179 MP: a sensor of 150 MP is read
    without its warning, and a file past our limit is refused with our reason, not Pillow's."""
    from PIL import Image

    sensor = tmp_path / "sensor.png"  # 150 MP of zeros: a legal PNG of 146 KB
    rows = zlib.compressobj(9)
    stream = b"".join(rows.compress(b"\0" * 15001 * 1000) for _ in range(10)) + rows.flush()
    sensor.write_bytes(png_declaring(15000, 10000).replace(png_chunk(b"IDAT", zlib.compress(b"\0" * 64)),
                                                           png_chunk(b"IDAT", stream)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (header,) = read_headers(str(sensor))
        assert header.shape == (10000, 15000) and not header.error
        for fname, data, _ in bombs().values():
            (tmp_path / fname).write_bytes(data)
            (refused,) = read_headers(str(tmp_path / fname))
            assert "decompression bomb" not in refused.error and "limit 200 MP" in refused.error
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS


# ---------------------------------------------------------------- counts, bombs in compressed blocks, odd files


def test_a_frame_count_no_file_holds_lists_the_missing_frames_as_one(sandbox, tmp_path):
    for fname, data, whole in (("count.ser", ser_declaring(4, 4, 2_000_000_000, body=64), 4),
                               ("count.fits", fits_declaring((2, 2, 10**9)), 360)):
        path = tmp_path / fname
        path.write_bytes(data)
        result = sandbox(path)
        assert_contained(result, fname)
        assert result["count"] == whole + 1 and result["seconds"] < 5
        last = result["headers"][-1]
        assert last["path"] == frame_ref(str(path), whole) and "listed as one" in last["error"], last
    cut = ser_declaring(4, 4, 3 + MAX_MISSING_FRAMES, body=48)  # a truncated video still lists each frame
    (tmp_path / "cut.ser").write_bytes(cut)
    assert len(read_headers(str(tmp_path / "cut.ser"))) == 3 + MAX_MISSING_FRAMES


def test_a_compressed_xisf_block_is_never_inflated_past_its_geometry(tmp_path):
    """A 16 x 16 image whose zlib block inflates to 256 MiB: refused after 513 bytes of it."""
    bomb = zlib.compressobj(9)
    block = b"".join(bomb.compress(b"\0" * (16 << 20)) for _ in range(16)) + bomb.flush()
    for spec in ("zlib:512", "zlib:4000000000", "lz4:4000000000", "zstd:4000000000"):
        path = tmp_path / "bomb.xisf"
        path.write_bytes(xisf_declaring("16:16:1", block, spec))
        (header,) = read_headers(str(path))
        assert header.shape == (16, 16)
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="513 bytes|geometry needs 512"):
                read_file(str(path))
            assert tracemalloc.get_traced_memory()[1] < len(block) + (4 << 20)
        finally:
            tracemalloc.stop()


def test_names_that_are_no_regular_file_are_refused_without_waiting(sandbox, tmp_path):
    """A folder named like an image, a named pipe (whose open would wait for a writer forever),
    a device that never ends, an empty file, a sparse file larger than any frame's."""
    (tmp_path / "x.jpg").mkdir()
    os.mkfifo(tmp_path / "p.png")
    (tmp_path / "z.fits").symlink_to("/dev/zero")
    (tmp_path / "empty.tif").write_bytes(b"")
    expected = {"x.jpg": "a directory, not an image file", "p.png": "a named pipe, not an image file",
                "z.fits": "a device, not an image file", "empty.tif": "empty file"}
    for fname, reason in expected.items():
        result = sandbox(tmp_path / fname)
        assert_contained(result, fname)
        assert reason in result["headers"][0]["error"] and result["seconds"] < 5
        if fname != "empty.tif":  # an empty file's header says so: nothing decodes it
            with pytest.raises(OSError, match=reason):
                read_file(str(tmp_path / fname))
    sparse = tmp_path / "sparse.png"
    sparse.write_bytes(seeds()["rgb.png"])
    os.truncate(sparse, MAX_FILE_BYTES + 1)  # no disk used: a file system without holes writes none either
    assert not read_headers(str(sparse))[0].error
    with pytest.raises(OSError, match="bytes: more than"):
        read_file(str(sparse))
    with pytest.raises(OSError, match="bytes: more than"):  # --merge's copy finder neither: it skips on OSError
        content_digest(str(sparse))
    whole = tmp_path / "whole.png"
    whole.write_bytes(seeds()["rgb.png"])
    assert content_digest(str(whole)) == read_file(str(whole))[1]


# ---------------------------------------------------------------- through a real scan


def test_a_scan_skips_every_hostile_file_with_a_reason_and_stays_exact(local_client, tmp_path):
    import imageio.v3 as iio

    from pipeline import scan
    from pipeline.state.files import read_files_csv
    from tests.conftest import write_stack
    from tests.test_reliability import QUIET, assert_stats_equal, config

    stack = np.random.default_rng(17).integers(0, 256, (6, 15, 12, 3), dtype=np.uint8)
    folder = tmp_path / "in"
    write_stack(folder, stack)
    (folder / "bomb.png").write_bytes(png_declaring(40000, 40000))
    jpeg = bytearray(iio.imwrite("<bytes>", stack[0], extension=".jpg"))
    jpeg[jpeg.find(b"\xff\xc4") + 5] ^= 0x80  # one bit of a Huffman table: the header reads, the pixels do not
    (folder / "flipped.jpg").write_bytes(bytes(jpeg))
    tiff = iio.imwrite("<bytes>", stack[1], extension=".tif")
    (folder / "truncated.tif").write_bytes(tiff[: len(tiff) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "d.png").mkdir()  # a folder named like an image is walked as a folder, never read as a file
    (folder / "d.png" / "notes.txt").write_text("not an image")
    result = scan([str(folder)], tmp_path / "out", config(), client=local_client, **QUIET)
    assert_stats_equal(result.stats, stack)
    rows = {Path(p).name: (s, r) for p, s, r in read_files_csv(tmp_path / "out")}
    skipped = {name: reason for name, (status, reason) in rows.items() if status == "skipped"}
    assert set(skipped) == {"bomb.png", "flipped.jpg", "truncated.tif", "empty.png"}
    assert "declares 40000 x 40000 pixels (1600 MP)" in skipped["bomb.png"]
    assert all(reason and "\n" not in reason for reason in skipped.values())
    assert "d.png" not in rows and "notes.txt" not in rows


if __name__ == "__main__":
    serve()
