"""Saved state: stats.zarr (``store``), files.csv (``files``), the checkpoints of an interrupted
scan (``checkpoint``); every file is written so that it appears complete or not at all
(``atomic``). Zarr, JSON and CSV only, never pickle: a result folder may come from someone else.

The submodules are imported where they are used (``store`` loads zarr; writing a CSV should not).
"""
