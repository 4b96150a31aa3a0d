"""A standalone bokeh HTML report (report.html): what was scanned, what was found, and where.

``numbers`` computes what the page shows (numpy only), ``figures`` builds the bokeh models,
``page`` assembles them and writes the file. Importing this package does not import bokeh:
the builders import it when they run (``preload`` imports it in the background beforehand).
"""

from .numbers import block_reduce
from .page import Prepared, preload, write_report

__all__ = ["Prepared", "block_reduce", "preload", "write_report"]
