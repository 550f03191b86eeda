"""Test and benchmark fixtures that ship with the package: synthetic films, a film of real
faces with known identities, synthetic face detections. Nothing in the pipeline imports them;
they ship because benchmarks/ and installed-package checks make their inputs with them."""
