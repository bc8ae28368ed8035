"""Verification: expected tables and tolerances (expected.py), the comparison (compare.py), statistics of several
runs (stats.py), the pytest plugin behind `repro verify` (plugin.py), and `repro import` (importer.py, logs.py).

Nothing here imports torch or mmcv.
"""
