"""The bundled multi-shot generator trainer (MultiShotMaster recipe) that reads our shards.

Modules: ``types`` (the records that pass between parts), ``presets``/``model``/``rope``/
``masks`` (the DiT), ``data``/``encoders``/``cache`` (shards to latents), ``flow`` (loss and
sampler), ``loop`` (training), ``script`` (what a generation is asked for, which the
benchmark scores against too: ``bench`` imports it from here, never the other way), ``sample``
(scripts to videos). Nothing here imports torch at package import time beyond what each module
needs.
"""
