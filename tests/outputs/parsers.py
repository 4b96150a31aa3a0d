"""The tools' own parsers of defect maps, re-implemented in Python, to read exports back as each tool does."""

from __future__ import annotations

import re
from pathlib import Path

_INT = r"\s*([+-]?\d+)(?!\d)"  # sscanf %d: skip blanks, then all the digits (no backtracking)
_FLOAT = r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\d.])"


def sscanf_ints(line: str, count: int) -> list[int]:
    """The ints sscanf("%d %d ...") assigns before the first mismatch."""
    out, pos = [], 0
    for _ in range(count):
        m = re.compile(_INT).match(line, pos)
        if not m:
            break
        out.append(int(m.group(1)))
        pos = m.end()
    return out


def fgets_lines(data: bytes, size: int) -> list[str]:
    """Successive fgets(buf, size, fp) results: at most size-1 bytes, up to and with '\\n'."""
    lines, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        end = min(end, pos + size - 1)
        lines.append(data[pos:end].decode("utf-8", "replace"))
        pos = end
    return lines


def dcraw_bad_pixels(path: Path, width: int, height: int, timestamp: int = 1) -> list[tuple[int, int]]:
    """dcraw.c bad_pixels(): fgets 128, cut at '#', sscanf %d %d %d, bounds and time checks."""
    fixed = []
    for line in fgets_lines(path.read_bytes(), 128):
        line = line.split("#", 1)[0]
        vals = sscanf_ints(line, 3)
        if len(vals) != 3:
            continue
        col, row, time = vals
        if not (0 <= col < width and 0 <= row < height) or time > timestamp:
            continue
        fixed.append((col, row))
    return fixed


def rawtherapee_scan(path: Path) -> tuple[str, list[tuple[int, int]]]:
    """RawTherapee DFManager::scanBadPixelsFile(): key from the name, offset on line 1."""
    name = str(path)
    makmodel = name[max(name.rfind("/"), name.rfind("\\")) + 1 : name.rfind(".")]
    lines = fgets_lines(path.read_bytes(), 256)
    bp: list[tuple[int, int]] = []
    offset = 0
    for i, line in enumerate(lines):
        vals = sscanf_ints(line, 2)
        if i == 0 and len(vals) == 1:
            offset = vals[0]
        elif len(vals) == 2:
            bp.append((vals[0] + offset, vals[1] + offset))
    return makmodel, bp


def rawtherapee_lookup(folder: Path, make: str, model: str, serial: str = "") -> tuple[str, list[tuple[int, int]]] | None:
    """RawTherapee DFManager::init() then getBadPixels(mak, mod, serial): every ``*.badpixels``
    of the folder scanned (kept only with pixels), then the key ``mak mod serial`` when the
    serial is not empty, else (or if absent) ``mak mod``; the key found and its pixels."""
    lists = {}
    for path in sorted(Path(folder).iterdir()):
        name = str(path)
        if "." in name and name[name.rfind(".") :] == ".badpixels":
            key, bp = rawtherapee_scan(path)
            if bp:
                lists[key] = bp
    keys = ([f"{make} {model} {serial}"] if serial else []) + [f"{make} {model}"]
    for key in keys:
        if key in lists:
            return key, lists[key]
    return None


_SIRIL_LINE = re.compile(_FLOAT + _FLOAT + r"(?:\s*(\S))?")


def _read_lines_lf(data: bytes) -> list[str]:
    """g_data_input_stream_read_line_utf8 until it returns NULL: lines split at '\n' only (no
    empty last line after a final newline); invalid UTF-8 ends the reading (NULL)."""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    out = []
    for raw in lines:
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            break
    return out


def siril_bpm_sanity(path: Path) -> bool:
    """Siril check_for_cosme_file_sanity() (preprocess.c), run by ``calibrate -cc=bpm``: every
    line must start with "P ", "C " or "#". Siril tests "C " twice and never "L ", so an L line,
    like a blank one, makes it refuse the file."""
    for line in _read_lines_lf(path.read_bytes()):
        # as Siril has it, "C " twice and no "L "
        if not (line.startswith("P ") or line.startswith("C ") or line.startswith("C ") or line.startswith("#")):  # noqa: PIE810
            return False
    return True


def siril_read(path: Path, rx: int, ry: int) -> dict[str, list]:
    """Siril apply_cosme_to_image() (cosmetic_correction.c): '#' comment; 'P x y [H|C]' one
    pixel; 'L y dirty [type]' a row; 'C x dirty [type]' a column; anything else an error.

    In Siril's *memory* coordinates: a P or L y becomes ``ry - y - 1``; a C line's x becomes
    ``rx - x - 1``, the row of the image turned by 90 degrees (cvRotateImage: transpose, then
    flip about the x axis), which is memory column x again. Returns ``points`` (x, ymem, type),
    ``columns`` (memory x), ``rows`` (memory y) and ``errors`` (the lines refused)."""
    out: dict[str, list] = {"points": [], "columns": [], "rows": [], "errors": []}
    for line in _read_lines_lf(path.read_bytes()):
        head = line[:1]
        if head == "#":
            continue
        if head not in ("P", "L", "C"):
            out["errors"].append(line)
            continue
        m = _SIRIL_LINE.match(line, 2)
        if not m:
            out["errors"].append(line)
            continue
        a, b = float(m.group(1)), float(m.group(2))
        if head == "P":
            kind = m.group(3) or "H"
            out["points"].append((int(a), int(ry - b - 1), "H" if kind == "H" else "C"))
        elif head == "L":
            out["rows"].append(int(ry - a - 1))
        else:
            turned_row = int(rx - a - 1)  # dev.p.y = fit->rx - dev.p.y - 1, then the 90-degree turn
            out["columns"].append(rx - 1 - turned_row)  # row i of the turned image is column rx-1-i
    return out


def siril_fixed(path: Path, rx: int, ry: int) -> set[tuple[int, int]]:
    """Every (x, memory y) that Siril's cosme repaints from the list."""
    lists = siril_read(path, rx, ry)
    fixed = {(x, y) for x, y, _ in lists["points"]}
    fixed |= {(x, y) for x in lists["columns"] for y in range(ry)}
    fixed |= {(x, y) for y in lists["rows"] for x in range(rx)}
    return fixed


def siril_cosme(path: Path, ry: int) -> tuple[list[tuple[int, int, str]], list[str]]:
    """Siril apply_cosme_to_image()'s P lines and the lines it refuses (see :func:`siril_read`).

    Returns the points in Siril's *memory* rows (after its ``ry - y - 1``) and the errors.
    """
    lists = siril_read(path, 1, ry)
    return lists["points"], lists["errors"]


def pixinsight_load(path: Path, width: int, height: int) -> set[tuple[int, int]]:
    """PixInsight CosmeticCorrection: its defect list's Load, then what Execute fixes.

    Load (CosmeticCorrectionInterface.cpp): File::ReadLines with RemoveEmptyLines and both trims;
    each line Break(' ') into words (a double space gives an empty word); ``Row`` as the first word
    is a row, anything else a column; word 2 the address, ToUInt (raises on anything else); more
    than 2 words a range from words 3 and 4. Execute (CosmeticCorrectionInstance.cpp): an item
    beyond the image is skipped; the range is min..max inclusive, clipped to the image. Returns
    the (x, y) fixed; raises ValueError/IndexError where PixInsight's load would fail.
    """

    def to_uint(word: str) -> int:
        if not re.fullmatch(r"\+?\d+", word):
            raise ValueError(f"ToUInt: {word!r} is not an unsigned integer")
        return int(word)

    text = path.read_bytes().decode("utf-8")
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n")]
    fixed: set[tuple[int, int]] = set()
    for line in (ln for ln in lines if ln):
        words = line.split(" ")
        is_row = words[0] == "Row"
        address = to_uint(words[1])
        is_range = len(words) > 2
        begin, end = (to_uint(words[2]), to_uint(words[3])) if is_range else (0, 0)
        h, w = height - 1, width - 1
        if is_row:
            w, h = h, w
        if address > w:
            continue
        y0, y1 = 0, h
        if is_range:
            y0 = min(begin, end)
            if y0 > h:
                continue
            y1 = min(max(begin, end), h)
        for y in range(y0, y1 + 1):
            fixed.add((y, address) if is_row else (address, y))
    return fixed
