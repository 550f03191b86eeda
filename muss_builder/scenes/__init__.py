"""Scenes: shots grouped into narrative units, from what the pipeline already measures."""
