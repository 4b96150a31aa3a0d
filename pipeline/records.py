"""Records that cross the stages: what became of each file and why, and what is known of a stack.

They are typed here once, so that discovery, the read tasks, the checkpoints, files.csv and
the report agree on one shape (a NamedTuple: it stays a plain tuple in JSON and in dask's
messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .layout import SensorLayout

USED, SKIPPED = "used", "skipped"


class FileStatus(NamedTuple):
    """One row of files.csv: a file, ``used`` or ``skipped``, and the reason (empty when used)."""

    path: str
    status: str
    reason: str = ""

    @property
    def used(self) -> bool:
        return self.status == USED

    @classmethod
    def ok(cls, path: str) -> FileStatus:
        return cls(path, USED, "")

    @classmethod
    def skip(cls, path: str, reason: str) -> FileStatus:
        return cls(path, SKIPPED, reason)


def failure_reason(exc: BaseException) -> str:
    """One line a user can act on, for a file that could not be read or decoded."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"cannot decode: {text[:200]}"


@dataclass(frozen=True)
class StackMeta:
    """What is known of a stack besides its statistics: the sensor, its layout and levels, and
    where the numbers came from. Saved in stats.zarr's attrs (``to_attrs``; the names there
    predate this class and stay) and shown in the report.
    """

    dtype: str
    layout: SensorLayout = SensorLayout()
    raw: bool = False
    make: str = ""
    model: str = ""
    serial: str = ""
    black_level: tuple[float, ...] = ()
    white_level: float | None = None
    group: str = ""
    version: str = ""
    created: str = ""
    # the physics model (``stats.model``): where the frames' exposure factors came from ("exif",
    # "frame mean" where no frame had one, "" no exposure model), whether capture dates are
    # modelled, and the value at which a sensel was taken as clipped
    exposure_source: str = ""
    dates: bool = False
    clip_level: int = 0
    # the reader of the files ("fits", "raw", "tiff", ...): Siril counts a FITS file's rows
    # from its last stored one, every other format's from its first (``outputs.siril``)
    file_format: str = ""
    # what the scan noticed of the files' layout and the user should act on (a Bayer mosaic
    # saved as gray: ``discover.mosaic_notice``), shown at the top of the report
    layout_notice: str = ""
    # raw files: where LibRaw's visible area (our grid) lies in the stored raw, (top, left, raw
    # height, raw width), and the LibRaw version that said so. The DNG opcode is written in the
    # stored raw's coordinates, and a map read by another LibRaw may need moving (``verify``)
    raw_margins: tuple[int, ...] = ()
    libraw_version: str = ""

    @property
    def camera(self) -> str:
        return " ".join(p for p in (self.make, self.model) if p)

    def to_attrs(self) -> dict:
        layout = self.layout.to_attrs()
        return {"dtype": self.dtype, "raw": self.raw, "make": self.make, "model": self.model, "serial": self.serial,
                "cfa_pattern": layout["cfa_pattern"], "color_desc": layout["color_desc"],
                "black_level": list(self.black_level), "white_level": self.white_level, "group": self.group,
                "neighbour_stride": layout["neighbour_stride"], "hotpixels_version": self.version,
                "created": self.created, "exposure_source": self.exposure_source, "dates": self.dates,
                "clip_level": self.clip_level, "file_format": self.file_format,
                "layout_notice": self.layout_notice, "raw_margins": list(self.raw_margins),
                "libraw_version": self.libraw_version}

    @classmethod
    def from_attrs(cls, attrs: dict) -> StackMeta:
        white = attrs.get("white_level")
        return cls(dtype=str(attrs.get("dtype", "")), layout=SensorLayout.from_attrs(attrs), raw=bool(attrs.get("raw")),
                   make=str(attrs.get("make") or ""), model=str(attrs.get("model") or ""),
                   serial=str(attrs.get("serial") or ""),
                   black_level=tuple(float(b) for b in attrs.get("black_level") or ()),
                   white_level=None if white is None else float(white), group=str(attrs.get("group") or ""),
                   version=str(attrs.get("hotpixels_version") or ""), created=str(attrs.get("created") or ""),
                   exposure_source=str(attrs.get("exposure_source") or ""), dates=bool(attrs.get("dates")),
                   clip_level=int(attrs.get("clip_level") or 0), file_format=str(attrs.get("file_format") or ""),
                   layout_notice=str(attrs.get("layout_notice") or ""),
                   raw_margins=tuple(int(v) for v in attrs.get("raw_margins") or ()),
                   libraw_version=str(attrs.get("libraw_version") or ""))


@dataclass
class ReadRecord:
    """What the read tasks of a segment report besides its sums: every file's status, the
    content digests of the files used (so --merge can recognise a copy), and the exposure
    factor each used frame was fitted with (the model's frame table, ``stats.model``) and the
    sketch of its sensels that stood out as lit hot ones do (``spikes``: the set bits; where a
    stack's hot sensels are missing, the camera subtracted a dark frame)."""

    statuses: list[FileStatus]
    digests: dict[str, str] = field(default_factory=dict)
    factors: dict[str, int] = field(default_factory=dict)
    spikes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return sum(1 for s in self.statuses if FileStatus(*s).used)

    @classmethod
    def concat(cls, parts: list[ReadRecord]) -> ReadRecord:
        """Records in order (a segment's partitions, a scan's segments)."""
        statuses = [FileStatus(*s) for p in parts for s in p.statuses]
        digests = {k: v for p in parts for k, v in p.digests.items()}
        return cls(statuses, digests, {k: v for p in parts for k, v in p.factors.items()},
                   {k: v for p in parts for k, v in p.spikes.items()})

    @classmethod
    def same_files(cls, parts: list[ReadRecord]) -> ReadRecord:
        """The record of bands that each read the same files (``engine.graph.band_outputs``): one
        status per file; a file's digest from the band that digested it; a frame's sketch bits
        are those any band saw (each saw its own rows).
        A file that one band could use and another could not would leave the bands' sums
        counting different frames: that is refused."""
        first = parts[0]
        for other in parts[1:]:
            if [tuple(s) for s in other.statuses] != [tuple(s) for s in first.statuses]:
                differ = next(a for a, b in zip(first.statuses, other.statuses) if tuple(a) != tuple(b))
                raise RuntimeError(f"{differ[0]} was read differently by two bands of the sensor "
                                   f"({differ[2] or 'used'}); run the scan again")
        spikes = {path: sorted({b for p in parts for b in p.spikes.get(path, [])}) for path in first.spikes}
        digests = {path: d for p in parts for path, d in p.digests.items()}
        return cls([FileStatus(*s) for s in first.statuses], digests, dict(first.factors), spikes)

    def to_json(self) -> list:
        return [[list(s) for s in self.statuses], self.digests, self.factors, self.spikes]

    @classmethod
    def from_json(cls, data: list) -> ReadRecord:
        """A record as ``to_json`` wrote it (checkpoints of older versions have no factors, spikes)."""
        statuses, digests, *rest = data
        factors = {str(k): int(v) for k, v in (rest[0] if rest else {}).items()}
        spikes = {str(k): [int(b) for b in v] for k, v in (rest[1] if len(rest) > 1 else {}).items()}
        return cls([FileStatus(*s) for s in statuses], dict(digests), factors, spikes)


@dataclass(frozen=True)
class Counted:
    """A file the saved statistics hold (one row of the manifest in stats.zarr): its identity,
    to recognise it again, and its frame's shooting data and model factor, the frame table of
    the physics model (``stats.model``)."""

    size: int
    mtime: float
    digest: str = ""
    exposure: float | None = None
    iso: float | None = None
    time: float | None = None
    temperature: float | None = None
    factor: int = -1
    spikes: tuple[int, ...] | None = None  # its sketch of lit-hot-looking sensels (None: not kept)
    gain: float | None = None  # the camera's own gain setting (FITS GAIN)

    COLUMNS = ("path", "size", "mtime", "digest", "exposure", "iso", "time", "temperature", "factor", "spikes",
               "gain")

    def row(self, path: str) -> list:
        return [path, self.size, self.mtime, self.digest, self.exposure, self.iso, self.time, self.temperature,
                self.factor, None if self.spikes is None else list(self.spikes), self.gain]

    @classmethod
    def from_row(cls, columns: list[str], row: list) -> tuple[str, Counted]:
        """(path, record) from a manifest row under ``columns`` (older manifests have fewer)."""
        data = dict(zip(columns, row))

        def real(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        factor, spikes = data.get("factor"), data.get("spikes")
        return str(data["path"]), cls(int(data["size"]), float(data["mtime"]), str(data.get("digest") or ""),
                                      real("exposure"), real("iso"), real("time"), real("temperature"),
                                      -1 if factor is None else int(factor),
                                      None if spikes is None else tuple(int(b) for b in spikes), real("gain"))
