"""Grouping consecutive shots into multi-shot samples."""
