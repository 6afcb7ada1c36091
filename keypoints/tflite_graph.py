"""Run a converted TFLite graph (JSON + safetensors, see scripts/convert_mediapipe.py) in torch.

`TfliteGraph` walks the graph's ops in order with torch functional calls. TFLite is NHWC; the
executor transposes the input once to NCHW, keeps 4-D activations NCHW (what torch's
convolutions want) and goes back to NHWC only where the graph's semantics need it (RESHAPE,
CONCATENATION of 4-D tensors' channels, the outputs). TFLite's SAME padding puts the odd pixel
at the bottom/right, unlike torch's symmetric `padding=`: where it is uneven (strided ops) it
is an explicit F.pad, elsewhere the convolution's own padding. Batch: the graph says 1; any
batch runs, on any device or dtype.

It is strict because a silent mismatch would give plausible but wrong keypoints: an unknown
op, a tensor read before it is made, a missing or extra constant, a constant or an
intermediate whose shape differs from the graph's, or an input of the wrong size is an error
that names the op and tensor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint import CheckpointError, read_weights

GRAPH_FORMAT = "tflite-graph/1"
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
# In place: each op applies its fused activation to the tensor it has just made.
ACTIVATIONS: dict[str | None, Callable[[torch.Tensor], torch.Tensor]] = {
    None: lambda x: x,
    "RELU": torch.relu_,
    "RELU6": lambda x: x.clamp_(0.0, 6.0),
    "RELU_N1_TO_1": lambda x: x.clamp_(-1.0, 1.0),
    "TANH": torch.tanh_,
}


class GraphError(CheckpointError):
    """A graph description, its weights or its input that the executor cannot run."""


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite SAME padding of one axis: (before, after); the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride, dilation, value=0.0):
    top, bottom = same_padding(x.shape[2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[3], kernel[1], stride[1], dilation[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


class TfliteGraph(nn.Module):
    """A converted TFLite graph as a module: `forward(x [B, H, W, C])` -> {output name: tensor}
    in TFLite's own layout (NHWC for 4-D outputs), batch B."""

    def __init__(
        self, description: dict, constants: dict[str, torch.Tensor], *, name: str = "graph"
    ):
        super().__init__()
        self.name = name
        if description.get("format") != GRAPH_FORMAT:
            raise GraphError(
                f"{name}: graph format {description.get('format')!r}, expected {GRAPH_FORMAT!r}"
            )
        self.ops: list[dict] = description["ops"]
        self.shapes = {int(k): tuple(v) for k, v in description["shapes"].items()}
        if len(description["inputs"]) != 1:
            raise GraphError(f"{name}: {len(description['inputs'])} inputs; one is supported")
        self.input_id = int(description["inputs"][0]["id"])
        self.input_shape = tuple(description["inputs"][0]["shape"])
        self.outputs = [(int(o["id"]), o["name"]) for o in description["outputs"]]
        declared = {f"t{k}": tuple(v) for k, v in description["constants"].items()}
        missing = sorted(set(declared) - set(constants))
        extra = sorted(set(constants) - set(declared))
        if missing or extra:
            raise GraphError(f"{name}: weights lack {missing[:5]} / have unknown {extra[:5]}")
        for key, shape in declared.items():
            if tuple(constants[key].shape) != shape:
                raise GraphError(
                    f"{name}: constant {key} has shape {tuple(constants[key].shape)}, "
                    f"the graph says {shape}"
                )
        self._const_ids = {int(k[1:]) for k in declared}
        made = {self.input_id} | self._const_ids
        for i, op in enumerate(self.ops):
            if op["op"] not in OPS:
                raise GraphError(
                    f"{name}: op {i} is {op['op']}, which the executor does not run "
                    f"(it runs {', '.join(sorted(OPS))})"
                )
            for t in op["inputs"]:
                if t >= 0 and t not in made:
                    raise GraphError(
                        f"{name}: op {i} ({op['op']}) reads tensor {t} before it is made"
                    )
            made.update(op["outputs"])
        for t, out_name in self.outputs:
            if t not in made:
                raise GraphError(f"{name}: output {out_name} (tensor {t}) is never made")
        # Weights in torch's layout, made once: conv OHWI -> OIHW, depthwise 1HWC -> C1HW.
        for i, op in enumerate(self.ops):
            if op["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w = constants[f"t{op['inputs'][1]}"].float()
                w = w.permute(0, 3, 1, 2) if op["op"] == "CONV_2D" else w.permute(3, 0, 1, 2)
                self.register_buffer(f"w{i}", w.contiguous())
                if len(op["inputs"]) > 2 and op["inputs"][2] >= 0:
                    self.register_buffer(f"b{i}", constants[f"t{op['inputs'][2]}"].float())
        conv_weights = {
            t
            for op in self.ops
            if op["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
            for t in op["inputs"][1:]
        }
        for t in sorted(self._const_ids - conv_weights):  # other constants: NHWC as stored
            self.register_buffer(f"c{t}", constants[f"t{t}"].float())
        # Free each intermediate after its last reader: the peak is a few activations.
        last_use: dict[int, int] = {}
        for i, op in enumerate(self.ops):
            for t in op["inputs"]:
                last_use[t] = i
        keep = {t for t, _ in self.outputs}
        self._free_after = [
            [
                t
                for t in op["inputs"]
                if last_use.get(t) == i and t not in keep and t not in self._const_ids
            ]
            for i, op in enumerate(self.ops)
        ]

    @classmethod
    def from_files(
        cls, graph: str | os.PathLike[str], weights: str | os.PathLike[str]
    ) -> TfliteGraph:
        path = Path(graph)
        if not path.is_file():
            raise GraphError(f"{path}: no such graph file (made by scripts/convert_mediapipe.py)")
        try:
            description = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GraphError(f"{path}: not valid JSON ({exc})") from None
        return cls(description, read_weights(weights), name=str(path))

    def _value(self, values: dict, t: int) -> tuple[torch.Tensor, str]:
        """(tensor, layout) of tensor id `t`; layout 'nchw' for 4-D activations, 'plain' else."""
        if t in values:
            return values[t]
        if t in self._const_ids:
            return getattr(self, f"c{t}"), "plain"
        raise GraphError(f"{self.name}: tensor {t} is not available")  # guarded at load

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        expected = self.input_shape[1:]
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise GraphError(
                f"{self.name}: input of shape {tuple(x.shape)}; the graph takes [B, "
                f"{', '.join(map(str, expected))}] (NHWC)"
            )
        weight = next(self.buffers(), None)  # the graph runs in its weights' dtype
        dtype = weight.dtype if weight is not None else torch.float32
        values: dict[int, tuple[torch.Tensor, str]] = {
            self.input_id: (x.to(dtype).permute(0, 3, 1, 2).contiguous(), "nchw")
        }
        batch = x.shape[0]
        for i, op in enumerate(self.ops):
            y, layout = OPS[op["op"]](self, i, op, values)
            out = op["outputs"][0]
            want = (batch, *self.shapes[out][1:])
            got = tuple(y.shape) if layout == "plain" else (y.shape[0], *y.shape[2:], y.shape[1])
            if got != want:
                raise GraphError(
                    f"{self.name}: op {i} ({op['op']}) made tensor {out} of shape {got}, "
                    f"the graph says {want}"
                )
            values[out] = (y, layout)
            for t in self._free_after[i]:
                values.pop(t, None)
        result = {}
        for t, name in self.outputs:
            y, layout = values[t]
            result[name] = y.permute(0, 2, 3, 1).contiguous() if layout == "nchw" else y
        return result


def _nchw(graph: TfliteGraph, values: dict, t: int, op: dict) -> torch.Tensor:
    y, layout = graph._value(values, t)
    if layout != "nchw":
        raise GraphError(f"{graph.name}: {op['op']} needs a 4-D activation, tensor {t} is not")
    return y


def _conv(graph: TfliteGraph, i: int, op: dict, values: dict):
    o = op["options"]
    x = _nchw(graph, values, op["inputs"][0], op)
    w = getattr(graph, f"w{i}")
    b = getattr(graph, f"b{i}", None)
    groups = 1
    if op["op"] == "DEPTHWISE_CONV_2D":
        groups = x.shape[1]
        if w.shape[0] != groups * o["depth_multiplier"]:
            raise GraphError(f"{graph.name}: op {i}: depthwise weight does not fit its input")
    padding = (0, 0)
    if o["padding"] == "SAME":
        sides = [
            same_padding(x.shape[axis], w.shape[axis], o["stride"][k], o["dilation"][k])
            for k, axis in enumerate((2, 3))
        ]
        (top, bottom), (left, right) = sides
        if top == bottom and left == right:  # torch's own padding: no copy
            padding = (top, left)
        else:
            x = F.pad(x, (left, right, top, bottom))
    y = F.conv2d(
        x, w, b, stride=o["stride"], padding=padding, dilation=o["dilation"], groups=groups
    )
    return ACTIVATIONS[o["activation"]](y), "nchw"


def _max_pool(graph: TfliteGraph, i: int, op: dict, values: dict):
    o = op["options"]
    x = _nchw(graph, values, op["inputs"][0], op)
    if o["padding"] == "SAME":
        x = _pad_same(x, tuple(o["filter"]), o["stride"], (1, 1), value=float("-inf"))
    y = F.max_pool2d(x, tuple(o["filter"]), tuple(o["stride"]))
    return ACTIVATIONS[o["activation"]](y), "nchw"


def _add(graph: TfliteGraph, i: int, op: dict, values: dict):
    (a, la), (b, lb) = (graph._value(values, t) for t in op["inputs"])
    if la != lb:  # a per-channel constant [C] against an NCHW activation
        if a.ndim != 1 and b.ndim != 1:
            raise GraphError(f"{graph.name}: op {i} (ADD): operand layouts do not broadcast")
        a, b = (a.view(1, -1, 1, 1), b) if a.ndim == 1 else (a, b.view(1, -1, 1, 1))
    return ACTIVATIONS[op["options"]["activation"]](a + b), "nchw" if "nchw" in (
        la,
        lb,
    ) else "plain"


def _concat(graph: TfliteGraph, i: int, op: dict, values: dict):
    parts = [graph._value(values, t) for t in op["inputs"]]
    layouts = {layout for _, layout in parts}
    if len(layouts) != 1:
        raise GraphError(f"{graph.name}: op {i} (CONCATENATION) mixes layouts")
    layout = layouts.pop()
    ndim = parts[0][0].ndim
    axis = op["options"]["axis"] % ndim
    if layout == "nchw":
        axis = NHWC_TO_NCHW_AXIS[axis]
    y = torch.cat([p for p, _ in parts], dim=axis)
    return ACTIVATIONS[op["options"]["activation"]](y), layout


def _depth_to_space(graph: TfliteGraph, i: int, op: dict, values: dict):
    x = _nchw(graph, values, op["inputs"][0], op)
    r = op["options"]["block_size"]
    n, c, h, w = x.shape
    # TFLite (NHWC): out[h*r+i, w*r+j, c] = in[h, w, (i*r+j)*C + c]  (not torch's pixel_shuffle)
    y = x.view(n, r, r, c // (r * r), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (r * r), h * r, w * r), "nchw"


def _resize_bilinear(graph: TfliteGraph, i: int, op: dict, values: dict):
    o = op["options"]
    x = _nchw(graph, values, op["inputs"][0], op)
    if o["align_corners"]:
        y = F.interpolate(x, size=tuple(o["size"]), mode="bilinear", align_corners=True)
    elif o["half_pixel_centers"]:  # torch's align_corners=False is the half-pixel rule
        y = F.interpolate(x, size=tuple(o["size"]), mode="bilinear", align_corners=False)
    else:
        raise GraphError(
            f"{graph.name}: op {i}: legacy RESIZE_BILINEAR (no half-pixel) unsupported"
        )
    return y, "nchw"


def _pad(graph: TfliteGraph, i: int, op: dict, values: dict):
    x, layout = graph._value(values, op["inputs"][0])
    p = op["options"]["paddings"]
    if p[0] != [0, 0]:
        raise GraphError(f"{graph.name}: op {i} (PAD) pads the batch axis")
    if layout == "nchw":
        (t, b), (le, r), (c0, c1) = p[1], p[2], p[3]
        return F.pad(x, (le, r, t, b, c0, c1)), "nchw"
    flat = [v for pair in reversed(p[1:]) for v in pair]
    return F.pad(x, flat), "plain"


def _reshape(graph: TfliteGraph, i: int, op: dict, values: dict):
    x, layout = graph._value(values, op["inputs"][0])
    shape = op["options"]["shape"]
    if not shape or shape[0] != 1:
        raise GraphError(f"{graph.name}: op {i} (RESHAPE) to {shape} changes the batch axis")
    if layout == "nchw":
        x = x.permute(0, 2, 3, 1)
    y = x.reshape(x.shape[0], *shape[1:])
    if y.ndim == 4:
        return y.permute(0, 3, 1, 2).contiguous(), "nchw"
    return y, "plain"


def _logistic(graph: TfliteGraph, i: int, op: dict, values: dict):
    x, layout = graph._value(values, op["inputs"][0])
    return torch.sigmoid(x), layout


def _prelu(graph: TfliteGraph, i: int, op: dict, values: dict):
    """max(x, 0) + slope * min(x, 0), one slope per channel (stored [1, 1, C], NHWC)."""
    x = _nchw(graph, values, op["inputs"][0], op)
    slope, _ = graph._value(values, op["inputs"][1])
    if slope.numel() != x.shape[1]:
        raise GraphError(
            f"{graph.name}: op {i} (PRELU): {slope.numel()} slopes, {x.shape[1]} channels"
        )
    return F.prelu(x, slope.flatten().to(x.dtype)), "nchw"


OPS: dict[str, Callable[[TfliteGraph, int, dict, dict], tuple[torch.Tensor, str]]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "MAX_POOL_2D": _max_pool,
    "ADD": _add,
    "CONCATENATION": _concat,
    "DEPTH_TO_SPACE": _depth_to_space,
    "RESIZE_BILINEAR": _resize_bilinear,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "LOGISTIC": _logistic,
    "PRELU": _prelu,
}
