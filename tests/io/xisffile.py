"""An XISF writer for the tests, from the format's description (XISF 1.0: signature, header
length, reserved word, XML header, attached data block), written independently of the reader."""

from __future__ import annotations

import zlib
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

FORMATS = {np.dtype("uint8"): "UInt8", np.dtype("uint16"): "UInt16", np.dtype("uint32"): "UInt32",
           np.dtype("float32"): "Float32", np.dtype("float64"): "Float64"}
DATA_AT = 8192  # the block's absolute position: after the header, whatever its length


def compress(raw: bytes, codec: str, item: int) -> bytes:
    if codec.endswith("+sh"):
        n = len(raw) // item
        raw = np.frombuffer(raw, np.uint8, n * item).reshape(n, item).T.tobytes() + raw[n * item :]
    name = codec.removesuffix("+sh")
    if name == "zlib":
        return zlib.compress(raw)
    if name == "lz4":
        import lz4.block

        return lz4.block.compress(raw, store_size=False)
    import zstandard

    return zstandard.compress(raw)


def write_xisf(path: Path, pixels: np.ndarray, *, planar: bool = True, codec: str = "", cfa: str = "",
               cfa_size: int = 2, keywords: dict[str, str] | None = None,
               properties: dict[str, tuple[str, str]] | None = None, big_endian: bool = False) -> Path:
    """``pixels``: (H, W) or (H, W, C). ``keywords`` are FITS cards as XISF keeps them (string
    values quoted, as in FITS); ``properties``: id -> (type, value)."""
    pixels = np.asarray(pixels)
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    height, width = pixels.shape[:2]
    stored = np.moveaxis(pixels.reshape(height, width, channels), -1, 0) if planar else pixels
    stored = stored.astype(stored.dtype.newbyteorder(">" if big_endian else "<"))
    raw = np.ascontiguousarray(stored).tobytes()
    block = compress(raw, codec, pixels.dtype.itemsize) if codec else raw
    attrs = {"geometry": f"{width}:{height}:{channels}", "sampleFormat": FORMATS[pixels.dtype],
             "colorSpace": "RGB" if channels == 3 else "Gray", "location": f"attachment:{DATA_AT}:{len(block)}"}
    if pixels.dtype.kind == "f":
        attrs["bounds"] = "0:1"
    if not planar:
        attrs["pixelStorage"] = "Normal"
    if big_endian:
        attrs["byteOrder"] = "big"
    if codec:
        attrs["compression"] = f"{codec}:{len(raw)}" + (f":{pixels.dtype.itemsize}" if codec.endswith("+sh") else "")
    children = [f"<FITSKeyword name={quoteattr(k)} value={quoteattr(v)} comment=\"\"/>"
                for k, v in (keywords or {}).items()]
    children += [f"<Property id={quoteattr(k)} type={quoteattr(t)} value={quoteattr(v)}/>"
                 for k, (t, v) in (properties or {}).items()]
    if cfa:
        children.append(f"<ColorFilterArray pattern={quoteattr(cfa)} width=\"{cfa_size}\" height=\"{cfa_size}\"/>")
    image = "<Image " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + ">" + "".join(children) + "</Image>"
    xml = ('<?xml version="1.0" encoding="UTF-8"?><xisf version="1.0" xmlns="http://www.pixinsight.com/xisf">'
           + image + "</xisf>").encode()
    head = b"XISF0100" + len(xml).to_bytes(4, "little") + b"\0\0\0\0" + xml
    assert len(head) <= DATA_AT
    path.write_bytes(head + b"\0" * (DATA_AT - len(head)) + block)
    return path
