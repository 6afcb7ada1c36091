"""Shared plumbing for the three model packages and SynthFashion.

One place each for: atomic file writes (`fileio`), the image loader (`image_io`), typed
configs from YAML (`config`) and the DeepFashion file-naming convention (`deepfashion`).
Nothing here imports torch, so readers and the renderer stay light.
"""
