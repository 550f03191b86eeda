"""muss-builder: films in, multi-shot WebDataset corpus out."""

__version__ = "0.1.0"
SCHEMA_VERSION = "2.0"  # the output contract: samples, film records, tables (issue 17: 2.0)
