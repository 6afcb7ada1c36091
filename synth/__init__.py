"""SynthFashion: synthetic people with exact ground truth for every task.

People are rendered from real DeepFashion poses (`synth.posebank`) with procedural bodies,
hair and garments (`synth.identity`, `synth.textures`) by `synth.render.render_person`,
which returns the photo with its 18 keypoints (and their visibility), the 8-class ADGAN
map and the exact DensePose IUV. `synth.faces` draws CelebAMask-HQ-like face crops and
`synth.dataset.generate` writes whole datasets in the real formats; the command line is
`python -m synth --out DIR --identities N --poses K --size 256x176 --seed S`.

Only the format modules of `keypoints`, `parsing` and `common` are imported here.
"""
