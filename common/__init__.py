"""Shared plumbing for the model packages, the product and SynthFashion.

One place each for: atomic file writes (`fileio`), the image and label-map loaders and
writers (`image_io`), typed configs from YAML (`config`), the DeepFashion file-naming
convention (`deepfashion`), box and affine geometry (`geometry`), checkpoints and the one
strict way a network is loaded (`checkpoint`), CPU features (`hardware`), augmentation
(`augment`) and the training loop (`training`). `fileio`, `image_io`, `config`,
`deepfashion` and `geometry` import no torch, so readers and the renderer stay light.
"""
