"""Command line (typer); thin wrappers over the library."""
