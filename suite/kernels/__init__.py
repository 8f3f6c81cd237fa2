"""Shared numerical kernels for model files: one implementation of an operation that
several models use, tested once (``tests/test_scan.py``)."""
