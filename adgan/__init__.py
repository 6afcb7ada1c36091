"""adgan: the generator family (architectures in a registry), its discriminators, losses,
pair data, training task, metrics and evaluation, attribute transfer, and the
official-checkpoint importer. It may import `keypoints` and `parsing`, never `studio`.
"""
