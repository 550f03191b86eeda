"""Packing a finished build into uniform, film-mixed training shards (``muss-builder pack``).

``source`` reads and checks the build (refusing an incomplete one), ``plan`` decides the
split of every film and the seeded order of samples, ``tarout`` writes one packed shard,
``packer`` runs it all with resume, and ``shardlist`` expands the shard lists users give
(folders, globs, brace patterns, manifests, ``s3://`` urls).
"""
