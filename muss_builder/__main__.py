"""``python -m muss_builder``: the ``muss-builder`` command line."""

from muss_builder.cli.main import run

if __name__ == "__main__":
    run()
