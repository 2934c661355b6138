"""Benchmarks of the idaw core against numpy/scipy alternatives; run them with `python -m benchmarks.run_all`.

Every benchmark interleaves the repetitions of the alternatives it compares, in one process, and prints
JSON with medians, p99 and the ratios between them. Speed and memory are measured here, never in tests.
"""
