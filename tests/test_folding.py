"""BatchNorm folded into its convolution (`common.folding`): the same outputs, fewer layers."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from common.folding import fold_batchnorm
from parsing.model import ParserNet, ParserNetConfig
from parsing.predict import DensePredictor


def _with_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every BatchNorm given running statistics and an affine far from the identity, as a
    trained network has (fresh ones are the identity, which any folding would pass)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) * 3 + 0.2)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model.eval()


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_a_folded_block_computes_what_it_did() -> None:
    block = _with_statistics(
        nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Sequential(nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)),
            nn.BatchNorm2d(4),  # follows no convolution: stays
        )
    )
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        before = block(x)
        assert fold_batchnorm(block) == 2
        after = block(x)
    assert _count(block, nn.BatchNorm2d) == 1
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert fold_batchnorm(block) == 0  # nothing left to fold


def test_training_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)))


def test_the_parser_folds_whole_and_parses_as_before() -> None:
    """Every BatchNorm of the MobileNetV2 U-Net follows a convolution; the class
    probabilities, flip test included, stay within float rounding."""
    config = ParserNetConfig(input_size=(64, 44), decoder_channels=(32, 16, 16, 8, 8))
    model = _with_statistics(ParserNet(config))
    reference = copy.deepcopy(model)
    norms = _count(model, nn.BatchNorm2d)
    assert norms > 20
    x = torch.rand(2, 3, 64, 44)
    with torch.no_grad():
        before = reference.parsing_probabilities(x, flip_test=True)
        assert fold_batchnorm(model) == norms
        after = model.parsing_probabilities(x, flip_test=True)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_the_predictor_runs_its_parser_folded() -> None:
    model = _with_statistics(ParserNet(ParserNetConfig(input_size=(64, 44))))
    predictor = DensePredictor([model], flip_test=False)
    assert _count(predictor.models[0], nn.BatchNorm2d) == 0
    photo = np.random.default_rng(0).integers(0, 256, (80, 60, 3), dtype=np.uint8)
    assert predictor.predict(photo).labels.shape == (80, 60)
