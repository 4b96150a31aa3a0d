"""A documented setting: its default and the comment that documents it in configs/default.yaml.

The dataclasses of the settings (``config.py``, ``detect/config.py``) declare every field with
``setting``; configs/default.yaml is generated from them (``python -m pipeline.config``), and a
test keeps the file equal to what they generate, comments included.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, doc: str) -> Any:
    """A dataclass field with ``default`` and its one-line documentation."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def doc_of(field: dataclasses.Field) -> str:
    return field.metadata.get("doc", "")
