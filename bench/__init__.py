"""Benchmarks, run by ``make bench``: every figure is a ratio against a limit measured in the same run."""
