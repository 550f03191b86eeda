"""Benchmarks: scores that compare what the pipeline finds with exact ground truth."""
