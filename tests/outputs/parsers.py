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


def siril_cosme(path: Path, ry: int) -> tuple[list[tuple[int, int, str]], list[str]]:
    """Siril apply_cosme_to_image(): '#' comment, 'P x y [H|C]', anything else is an error.

    Returns the points in Siril's *memory* rows (after its ``ry - y - 1``) and the errors.
    """
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # g_data_input_stream_read_line returns NULL at EOF, no empty last line
    points, errors = [], []
    for line in lines:
        if line[:1] == "#":
            continue
        if line[:1] == "P":
            m = re.compile(_FLOAT + _FLOAT + r"(?:\s*(\S))?").match(line, 2)
            if not m:
                errors.append(line)
                continue
            x, y = float(m.group(1)), float(m.group(2))
            kind = m.group(3) or "H"
            points.append((int(x), int(ry - y - 1), "H" if kind == "H" else "C"))
        else:
            errors.append(line)
    return points, errors
