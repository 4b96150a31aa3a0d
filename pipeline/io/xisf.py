"""XISF: PixInsight's own format (monolithic files, version 1.0).

A file is the signature ``XISF0100``, the XML header's length (uint32, little-endian), 4
reserved bytes, the XML header, then the data blocks it points to. The first ``<Image>`` is
read:

- ``geometry="width:height:channels"``; ``sampleFormat`` UInt8, UInt16, UInt32, Float32 or
  Float64; ``pixelStorage`` Planar (the default: one plane per channel) or Normal
  (interleaved); ``byteOrder`` little (the default) or big.
- ``location="attachment:position:size"`` (absolute offsets), optionally compressed
  (``compression="codec:uncompressed-size[:item-size]"``: zlib, lz4, lz4hc or zstd, with
  ``+sh`` for byte shuffling; lz4 and zstandard are dependencies).
- The geometry is checked against ``limits`` before anything is allocated, and a compressed block
  is never inflated past the bytes its geometry needs (a zlib or zstd bomb stops there).
- Values are read exactly (``exact.as_stored``): 8-bit stays 8-bit; the rest become 16-bit
  where that loses nothing (a float frame normalised to 0..1 times 65535). A calibrated frame is
  refused with the reason.
- The CFA from ``<ColorFilterArray pattern=... width=... height=...>`` (2x2 Bayer or 6x6
  X-Trans), else a ``BAYERPAT`` FITS keyword as in FITS. XISF rows are stored top-down.
- Shooting data from the ``<Property>`` elements (Instrument:ExposureTime,
  Instrument:Camera:ISOSpeed, Observation:Time:Start, Instrument:Sensor:Temperature,
  Instrument:Camera:Name), else from the FITS keywords PixInsight keeps (EXPTIME, DATE-OBS, ...).

Why our own reader: the maintained one on PyPI (``xisf``) is GPLv3, which this MIT package cannot
depend on; the format is documented and simple enough to read from its specification.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace
from typing import IO, Any
from xml.etree import ElementTree

import numpy as np

from ..layout import SensorLayout
from . import exif, fits
from .exact import as_stored
from .header import Header
from .limits import check_frame
from .registry import register
from .source import text

SIGNATURE = b"XISF0100"
PREAMBLE = 16  # signature, header length, reserved
NAMESPACE = "{http://www.pixinsight.com/xisf}"
SAMPLE_TYPES = {"UInt8": "u1", "Byte": "u1", "UInt16": "u2", "UShort": "u2", "UInt32": "u4", "UInt": "u4",
                "Float32": "f4", "Float": "f4", "Float64": "f8", "Double": "f8"}
# the XISF properties of the physics model, and the FITS keywords of the same facts
PROPERTIES = {"exposure": "Instrument:ExposureTime", "iso": "Instrument:Camera:ISOSpeed",
              "time": "Observation:Time:Start", "temperature": "Instrument:Sensor:Temperature",
              "model": "Instrument:Camera:Name", "egain": "Instrument:Camera:Gain"}


def header_xml(head: bytes) -> ElementTree.Element:
    """The parsed XML header from the file's first bytes (at least ``PREAMBLE`` + its length)."""
    if head[:8] != SIGNATURE:
        raise ValueError("not a monolithic XISF file (no XISF0100 signature)")
    length = struct.unpack_from("<I", head, 8)[0]
    xml = head[PREAMBLE : PREAMBLE + length]
    if len(xml) < length:
        raise ValueError(f"the file is truncated: its XML header needs {length} bytes, it has {len(xml)}")
    try:
        return ElementTree.fromstring(xml.rstrip(b"\0"))
    except ElementTree.ParseError as exc:
        raise ValueError(f"the XISF header is not valid XML: {exc}") from exc


def read_head(source: str | IO[bytes]) -> bytes:
    """The preamble and the XML header, without the data blocks (no more than the file holds,
    whatever length a damaged preamble declares: ``read(n)`` allocates n bytes first)."""
    fh = open(source, "rb") if isinstance(source, str) else source
    try:
        size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
        preamble = fh.read(PREAMBLE)
        length = struct.unpack_from("<I", preamble, 8)[0] if len(preamble) >= 12 else 0
        return preamble + fh.read(min(length, size - len(preamble)))
    finally:
        if isinstance(source, str):
            fh.close()


def first_image(root: ElementTree.Element) -> ElementTree.Element:
    image = root.find(f"{NAMESPACE}Image")
    if image is None:
        raise ValueError("no <Image> in this XISF file")
    return image


def geometry(image: ElementTree.Element) -> tuple[int, int, int]:
    """(height, width, channels) of a 2-D image."""
    parts = [int(v) for v in image.get("geometry", "").split(":") if v]
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError(f"an XISF image of geometry {image.get('geometry')!r}: only 2-D images (width:height:"
                         f"channels) are read")
    width, height, channels = parts
    check_frame(height, width, channels)
    return height, width, channels


def sample_type(image: ElementTree.Element) -> np.dtype:
    fmt = image.get("sampleFormat", "")
    if fmt not in SAMPLE_TYPES:
        raise ValueError(f"XISF sample format {fmt!r} is not read (UInt8/16/32, Float32/64 are)")
    order = ">" if image.get("byteOrder", "little") == "big" else "<"
    return np.dtype(order + SAMPLE_TYPES[fmt])


def keywords(image: ElementTree.Element) -> dict[str, Any]:
    """The FITS keywords PixInsight keeps, with string values unquoted."""
    out: dict[str, Any] = {}
    for kw in image.findall(f"{NAMESPACE}FITSKeyword"):
        value = kw.get("value", "").strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'").strip()
        out.setdefault(kw.get("name", "").strip().upper(), value)
    return out


def properties(image: ElementTree.Element) -> dict[str, str]:
    return {p.get("id", ""): p.get("value", p.text or "") for p in image.iter(f"{NAMESPACE}Property")}


def cfa_layout(image: ElementTree.Element, cards: dict[str, Any]) -> SensorLayout:
    """The stored grid's CFA from ``<ColorFilterArray>``, else ``BAYERPAT`` (rows top-down)."""
    cfa = image.find(f"{NAMESPACE}ColorFilterArray")
    if cfa is None:
        return fits.bayer_layout({**cards, "ROWORDER": "TOP-DOWN"}) if cards.get("BAYERPAT") else SensorLayout()
    pattern = cfa.get("pattern", "").upper()
    width, height = int(cfa.get("width", 0)), int(cfa.get("height", 0))
    if not width or len(pattern) != width * height:
        raise ValueError(f"an XISF ColorFilterArray {pattern!r} of {width}x{height} does not add up")
    colors = "RGB" + "".join(sorted(set(pattern) - set("RGB")))
    rows = [[colors.index(c) for c in pattern[r * width : (r + 1) * width]] for r in range(height)]
    return SensorLayout.of_file(rows, colors)


def shooting_data(image: ElementTree.Element, cards: dict[str, Any]) -> exif.ShootingData:
    """Exposure, ISO, capture time, temperature and camera name: the properties first, then
    the FITS keywords."""
    props = properties(image)
    found: dict[str, Any] = {}
    for field, key in PROPERTIES.items():
        if key not in props:
            continue
        value: Any = text(props[key])
        value = fits.obs_time(value) if field == "time" else value if field == "model" else exif.number(value)
        if value not in (None, ""):
            found[field] = value
    shot = fits.shooting_data(cards)
    egain = found.pop("egain", None)  # PixInsight's camera gain is in electrons per DN, FITS's EGAIN
    if "iso" not in found and egain is not None and not exif.number(cards.get("ISOSPEED")):
        found["iso"] = fits.iso_of_egain(egain) or shot.iso
    return replace(shot, **found)


def decompress(block: bytes, spec: str, needed: int) -> bytes:
    """A data block as stored, from its ``compression`` attribute's codec (and byte shuffling),
    inflated to no more than the ``needed`` bytes of its image's geometry."""
    parts = spec.split(":")
    codec, size = parts[0], int(parts[1])
    item = int(parts[2]) if len(parts) > 2 else 0
    if size > needed:
        raise ValueError(f"the XISF image's compressed block declares {size} bytes, its geometry needs {needed}")
    name = codec.removesuffix("+sh")
    if name == "zlib":
        inflate = zlib.decompressobj()
        data = inflate.decompress(block, size + 1)  # one byte more tells a block that is too large
        if not inflate.eof and len(data) <= size:
            raise ValueError("the XISF image's zlib block is truncated")
    elif name in ("lz4", "lz4hc"):
        import lz4.block

        data = lz4.block.decompress(block, uncompressed_size=size)
    elif name == "zstd":
        import zstandard

        # not zstandard.decompress: it allocates the size a frame's header declares, whatever the limit
        data = zstandard.ZstdDecompressor().stream_reader(block).read(size + 1)
    else:
        raise ValueError(f"unknown XISF compression codec {codec!r}")
    if len(data) != size:
        raise ValueError(f"the XISF image decompressed to {len(data)} bytes, its header says {size}")
    return unshuffle(data, item) if codec.endswith("+sh") and item > 1 else data


def unshuffle(data: bytes, item: int) -> bytes:
    """Undo byte shuffling: the stored block holds every item's first byte, then every second
    byte, ...; bytes beyond whole items stay at the end."""
    count = len(data) // item
    whole = np.frombuffer(data, np.uint8, count * item).reshape(item, count).T
    return whole.tobytes() + data[count * item :]


class Xisf:
    name = "xisf"
    suffixes = frozenset({".xisf"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        image = first_image(header_xml(read_head(source)))
        height, width, channels = geometry(image)
        dtype = "uint8" if sample_type(image).itemsize == 1 else "uint16"
        cards = keywords(image)
        layout = cfa_layout(image, cards) if channels == 1 else SensorLayout()
        shot = shooting_data(image, cards)
        shape = (height, width) if channels == 1 else (height, width, channels)
        return Header(path, shape=shape, dtype=dtype, model=shot.model, layout=layout, exposure=shot.exposure,
                      iso=shot.iso, time=shot.time, temperature=shot.temperature, gain=shot.gain)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        image = first_image(header_xml(data))
        height, width, channels = geometry(image)
        dtype = sample_type(image)
        where = image.get("location", "").split(":")
        if where[0] != "attachment" or len(where) != 3:
            raise ValueError(f"an XISF image stored {where[0]!r}: only attached data blocks are read")
        start, size = int(where[1]), int(where[2])
        block = data[start : start + size]
        if len(block) < size:
            raise ValueError(f"the file is truncated: its image needs {start + size} bytes, it has {len(data)}")
        count = height * width * channels
        if image.get("compression"):
            block = decompress(block, image.get("compression", ""), count * dtype.itemsize)
        if len(block) < count * dtype.itemsize:
            raise ValueError(f"the XISF image block holds {len(block)} bytes, {count * dtype.itemsize} needed")
        values = np.frombuffer(block, dtype, count)
        if image.get("pixelStorage", "Planar") == "Normal":
            values = values.reshape(height, width, channels)
        else:
            values = np.moveaxis(values.reshape(channels, height, width), 0, -1)
        pixels = values[..., 0] if channels == 1 else values
        return as_stored(pixels.astype(dtype.newbyteorder("=")), "uint8" if dtype.itemsize == 1 else "uint16")


FORMAT = register(Xisf())
