"""parsing: ADGAN's 8 classes and the merge tables into them, the DensePose convention,
and the readers/writers of parsing and DensePose ground truth.

The dense network (parsing head, IUV head), its losses and metrics build on these
modules (issue 4).
"""
