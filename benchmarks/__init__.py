"""Benchmark scripts over the library; :mod:`benchmarks.harness` holds the measurements they share.

The scripts are run by their path (``python benchmarks/compare.py``) and import the harness as ``harness``; this
file makes the folder a package, so that code at the repository root (``benchmark.py``, the tests run with
``python -m pytest``) imports it as ``benchmarks.harness``. setup.py does not install it.
"""
