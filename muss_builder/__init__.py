"""muss-builder: films in, multi-shot WebDataset corpus out."""

__version__ = "0.1.0"
# the output contract: samples, film records, tables (2.0: issue 17; 2.1: sample windows)
SCHEMA_VERSION = "2.1"
