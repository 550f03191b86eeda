"""What every stage needs, below them all: names of shards, samples and records
(``naming``), the output store and atomic writes (``storage``), file names kept losslessly in
text (``text``), and model resolution, device choice and loaded-model caching (``models``).

Nothing here imports a stage package or ``muss_builder.runtime``.
"""
