"""keypoints: the 18-point OpenPose-COCO skeleton, its file formats, pose maps, drawing.

The keypoint network, its training and evaluation build on these modules (issue 3).
"""
