"""common.tensor_ops: the shared small tensor operations."""

from __future__ import annotations

import torch

from common.tensor_ops import class_map


def test_class_map_is_argmax_over_the_classes_first_on_ties():
    torch.manual_seed(0)
    scores = torch.rand(2, 8, 5, 7)
    assert torch.equal(class_map(scores), scores.argmax(1))
    tied = torch.zeros(1, 8, 2, 2)
    tied[:, 3] = tied[:, 5] = 1.0
    assert (class_map(tied) == 3).all()
    assert (class_map(torch.zeros(1, 4, 3)) == 0).all()  # all equal: the first class
