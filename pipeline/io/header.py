"""What discovery knows of a file before decoding its pixels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..layout import SensorLayout


@dataclass(frozen=True)
class Header:
    """A file's stored layout and camera identity, read without decoding pixels.

    ``raw`` means the file is a camera raw read through LibRaw (rawpy); ``layout`` says which
    stored value is which colour (a raw file's CFA, or ``--cfa``). ``error`` is why the file
    cannot be used (the header could not be read); everything else is then empty.

    The frame's shooting data, where the file has them (None where not): ``exposure`` time in
    seconds, ``iso`` (the analog gain in ISO units), capture ``time`` (Unix seconds, UTC: an
    EXIF time without a zone is taken as UTC) and sensor or ambient ``temperature`` in °C.
    ``gain`` is an astronomy camera's own gain setting (FITS ``GAIN``: tenths of a dB on some
    cameras, arbitrary units on others), which converts to nothing: where no ISO (or EGAIN)
    gives the analog gain, frames of another setting are another group (``unconverted_gain``).
    ``format`` names the reader that read it. ``raw_margins``: where LibRaw's visible area
    (our grid) sits in the stored raw, ``(top, left, raw height, raw width)``, for a raw file.
    """

    path: str
    shape: tuple[int, ...] = ()
    dtype: str = ""
    raw: bool = False
    make: str = ""
    model: str = ""
    serial: str = ""
    layout: SensorLayout = SensorLayout()
    black_level: tuple[float, ...] = ()
    white_level: float | None = None
    exposure: float | None = None
    iso: float | None = None
    time: float | None = None
    temperature: float | None = None
    gain: float | None = None
    raw_margins: tuple[int, ...] = ()
    format: str = ""  # the reader's name ("fits", "raw", ...): exports convert coordinates for it
    size: int = -1
    mtime: float = -1.0
    error: str = ""

    @property
    def camera(self) -> str:
        return " ".join(p for p in (self.make, self.model) if p)

    @property
    def unconverted_gain(self) -> float | None:
        """The camera's gain setting where nothing converts it to an analog gain (no ISO, no
        EGAIN): frames at two such settings differ by an unknown factor in every level and
        every noise, so they are never stacked together."""
        return self.gain if self.iso is None else None

    def group_key(self) -> tuple:
        """Files that may be stacked together: same sensor, same stored layout, and one gain
        setting where no ISO converts it."""
        return (self.make, self.model, self.serial, self.raw, self.layout, self.shape, self.dtype,
                self.unconverted_gain)

    def to_dict(self) -> dict:
        return asdict(self)
