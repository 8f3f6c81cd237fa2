"""rnnsuite-elman: an example plug-in for rnnsuite.

The model lives in :mod:`rnnsuite_elman.elman`; rnnsuite imports that module through
the ``rnnsuite.models`` entry point, so importing this package registers nothing.
"""
