"""Defect maps in the formats other tools read, one exporter module each, registered by name
(``registry``): dcraw/LibRaw, RawTherapee, Siril, PixInsight, a PNG mask and a FITS mask. defects.csv itself is the
defect record's own form (``pipeline.defect``) and is always written."""

from .registry import ExportContext, Exporter, exporters, register, selected, write_exports

__all__ = ["ExportContext", "Exporter", "exporters", "register", "selected", "write_exports"]
