"""Reading a written report back: its bokeh document, the models in it, and their columns."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re

import numpy as np


def document(path) -> dict:
    """The serialized bokeh document embedded in a standalone report page."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="[^"]*">(.*?)</script>', text, re.S)
    assert m, "no bokeh document in the page"
    return json.loads(html.unescape(m.group(1)))


def models(node, name=None):
    """Every serialized bokeh model (optionally of one type) anywhere under ``node``."""
    if isinstance(node, dict):
        if node.get("type") == "object" and (name is None or node.get("name") == name):
            yield node
        for v in node.values():
            yield from models(v, name)
    elif isinstance(node, list):
        for v in node:
            yield from models(v, name)


def value(v):
    """Decode a serialized column: a plain list, or a base64 ndarray."""
    if isinstance(v, dict) and v.get("type") == "ndarray":
        arr = v["array"]
        raw = base64.b64decode(arr["data"] if isinstance(arr, dict) else arr)
        if raw[:2] == b"\x1f\x8b":  # bokeh gzips large buffers
            raw = gzip.decompress(raw)
        return np.frombuffer(raw, dtype=v["dtype"]).reshape(v["shape"])
    if isinstance(v, list):
        return [value(x) if isinstance(x, dict) else x for x in v]
    return v
