"""muss-builder: films in, multi-shot WebDataset corpus out."""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.0"
