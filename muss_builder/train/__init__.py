"""The bundled multi-shot generator trainer (MultiShotMaster recipe) that reads our shards.

Modules: ``types`` (the records that pass between parts), ``presets``/``model``/``rope``/
``masks`` (the DiT), ``data``/``encoders``/``cache`` (shards to latents), ``flow`` (loss and
sampler), ``loop`` (training), ``sample`` (scripts to videos). Nothing here imports torch at
package import time beyond what each module needs.
"""
