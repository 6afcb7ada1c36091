"""Weight-only int8 storage: the error bound per weight, the round trip through a checkpoint,
and that a network's output barely moves."""

import torch
from safetensors.torch import load_file
from torch import nn

from common.checkpoint import (
    SCALE_SUFFIX,
    dequantize_state_dict,
    load_weights,
    quantize_state_dict,
    quantize_tensor,
    save_weights,
)


def test_each_weight_is_within_half_a_step_of_its_channel():
    torch.manual_seed(0)
    w = torch.randn(16, 8, 3, 3) * torch.logspace(-3, 1, 16)[:, None, None, None]
    q, scale = quantize_tensor(w)
    assert q.dtype == torch.int8 and scale.shape == (16, 1, 1, 1)
    back = q.float() * scale.float()
    step = scale.float()
    assert ((back - w).abs() <= 0.5 * step + 1e-7).all()
    assert (q.abs().amax(dim=(1, 2, 3)) == 127).all()  # every channel uses its full range


def test_state_dict_round_trip_keeps_small_and_integer_tensors():
    sd = {
        "conv.weight": torch.randn(32, 16, 3, 3),
        "conv.bias": torch.randn(32),
        "tiny.weight": torch.randn(4, 4),
        "steps": torch.tensor(7),
    }
    stored = quantize_state_dict(sd)
    assert stored["conv.weight"].dtype == torch.int8
    assert set(stored) == {*sd, "conv.weight" + SCALE_SUFFIX}
    assert (
        stored["conv.bias"].dtype == torch.float16 and stored["tiny.weight"].dtype == torch.float16
    )
    back = dequantize_state_dict(stored)
    assert set(back) == set(sd) and back["steps"] == 7
    rel = (back["conv.weight"] - sd["conv.weight"]).norm() / sd["conv.weight"].norm()
    assert rel < 0.01


def test_an_int8_file_loads_into_the_float_module_and_its_output_barely_moves(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 3, padding=1))
    save_weights(tmp_path / "w.safetensors", net, dtype=torch.int8)
    assert load_file(tmp_path / "w.safetensors")["0.weight"].dtype == torch.int8
    other = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 3, padding=1))
    load_weights(tmp_path / "w.safetensors", other)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref, got = net(x), other(x)
    assert ((got - ref).norm() / ref.norm()) < 0.02
