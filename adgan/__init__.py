"""adgan: the attribute-decomposed generator, its discriminators, losses, metrics and the
inference pipeline (issues 5 and 6). It may import `keypoints` and `parsing`, never the
other way round.
"""
