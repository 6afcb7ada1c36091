"""Convert BlazePose (the pose detector and the full landmark model) and the face landmark
model from the mediapipe wheel into `.safetensors` + a JSON graph each, which
`keypoints.tflite_graph` runs in plain PyTorch.

    pip download mediapipe==0.10.14 --no-deps -d wheels/
    pip install tflite            # the flatbuffer parser; needed only here, never at run time
    python scripts/convert_mediapipe.py --wheel wheels/mediapipe-0.10.14-*.whl \\
        --out keypoints/mediapipe_weights

Reads, without unpacking or running anything from the wheel:
  mediapipe/modules/pose_detection/pose_detection.tflite     -> detector.{json,safetensors}
  mediapipe/modules/pose_landmark/pose_landmark_full.tflite  -> landmark.{json,safetensors}
  mediapipe/modules/face_landmark/face_landmark.tflite       -> face.{json,safetensors}
  mediapipe-<version>.dist-info/LICENSE                      -> LICENSE (Apache-2.0)

Why a converter and not the TFLite runtime: the project runs on torch only, batched, on any
device. The graphs hold about a dozen standard ops; their weights are fp16 constants widened by
DEQUANTIZE ops, and the detector stores 38 weights sparse (DENSIFY). Both are folded here:
the safetensors hold every constant dense, in the graph's own layout (NHWC / OHWI), as fp16
(bit-exact: the model stores them so); the JSON lists the remaining ops in execution order
with their tensor ids and options (strides, SAME/VALID, fused activation, pad amounts, ...),
the graph's inputs/outputs with names and shapes, and the shape of every tensor for checks.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

try:
    import tflite
except ImportError:  # the converter's only extra; the runtime never needs it
    sys.exit("error: the converter needs the `tflite` flatbuffer parser: pip install tflite")
from safetensors.numpy import save_file

GRAPH_FORMAT = "tflite-graph/1"
MODELS = {
    "detector": "mediapipe/modules/pose_detection/pose_detection.tflite",
    "landmark": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    "face": "mediapipe/modules/face_landmark/face_landmark.tflite",
}
# TFLite TensorType codes -> numpy (only those these graphs use).
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


class ConversionError(ValueError):
    """The wheel or a graph in it is not what this converter understands."""


def _act(code: int, where: str) -> str | None:
    if code not in ACTIVATION:
        raise ConversionError(f"{where}: fused activation code {code} is not supported")
    return ACTIVATION[code]


def _options(op, kind: str, cls):
    table = op.BuiltinOptions()
    if table is None:
        raise ConversionError(f"{kind}: operator without its options table")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _index_vector(dim, which: str) -> np.ndarray:
    """A sparse dimension's segments or indices (an Int32/Uint16/Uint8 vector union)."""
    kind = dim.ArraySegmentsType() if which == "segments" else dim.ArrayIndicesType()
    table = dim.ArraySegments() if which == "segments" else dim.ArrayIndices()
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if cls is None or table is None:
        raise ConversionError(f"sparse dimension without {which} (vector type {kind})")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return np.asarray(vec.ValuesAsNumpy(), dtype=np.int64).reshape(-1)


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity) -> np.ndarray:
    """The dense tensor of a TFLite sparse constant (dense and CSR dimensions, any traversal
    order; block-sparse layouts are refused: these graphs have none)."""
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()]
    if sparsity.BlockMapLength() or len(order) != len(shape):
        raise ConversionError("block-sparse tensors are not supported")
    coords = np.zeros((1, 0), dtype=np.int64)  # one row per stored prefix, in traversal order
    for level in range(len(order)):
        dim = sparsity.DimMetadata(level)
        if dim.Format() == 0:  # DENSE: every prefix expands into dense_size children
            n = dim.DenseSize()
            coords = np.concatenate(
                [np.repeat(coords, n, axis=0), np.tile(np.arange(n), len(coords))[:, None]], 1
            )
        else:  # SPARSE_CSR: prefix p owns indices[segments[p]:segments[p + 1]]
            seg, idx = _index_vector(dim, "segments"), _index_vector(dim, "indices")
            if len(seg) != len(coords) + 1:
                raise ConversionError("sparse tensor: segment count does not match its prefix")
            counts = np.diff(seg)
            coords = np.concatenate([np.repeat(coords, counts, axis=0), idx[:, None]], 1)
    if len(coords) != values.size:
        raise ConversionError(f"sparse tensor: {values.size} values for {len(coords)} positions")
    dense = np.zeros(shape, dtype=values.dtype)
    positions = np.zeros_like(coords)
    positions[:, order] = coords  # traversal order -> tensor dimensions
    dense[tuple(positions.T)] = values.reshape(-1)
    return dense


def convert_model(data: bytes, source: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON graph, constants by key) of one .tflite flatbuffer."""
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ConversionError(f"{source}: {model.SubgraphsLength()} subgraphs; expected 1")
    graph = model.Subgraphs(0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        c = model.OperatorCodes(i)
        code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        codes.append(tflite.opcode2name(code) if code != 32 else f"CUSTOM:{c.CustomCode()}")

    def tensor_info(t: int) -> dict:
        tensor = graph.Tensors(t)
        return {
            "name": tensor.Name().decode(),
            "shape": [int(v) for v in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else [],
        }

    const: dict[int, np.ndarray] = {}
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        buf = model.Buffers(tensor.Buffer())
        if buf is None or buf.DataLength() == 0:
            continue
        if tensor.Type() not in DTYPES:
            raise ConversionError(f"{source}: tensor {t} has unsupported type {tensor.Type()}")
        raw = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=DTYPES[tensor.Type()])
        shape = tuple(tensor_info(t)["shape"])
        if tensor.Sparsity() is not None:
            const[t] = raw  # densified by its DENSIFY op below
        else:
            const[t] = raw.reshape(shape)

    ops: list[dict] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = codes[op.OpcodeIndex()]
        ins = [int(v) for v in op.InputsAsNumpy()]
        outs = [int(v) for v in op.OutputsAsNumpy()]
        where = f"{source}: operator {i} ({kind})"
        if kind == "DENSIFY":  # fold: sparse constant -> dense constant
            tensor = graph.Tensors(ins[0])
            if ins[0] not in const or tensor.Sparsity() is None:
                raise ConversionError(f"{where}: input is not a sparse constant")
            const[outs[0]] = densify(
                const[ins[0]], tuple(tensor_info(outs[0])["shape"]), tensor.Sparsity()
            )
            continue
        if kind == "DEQUANTIZE":  # fold: the fp16 weight stays fp16 on disk, fp32 in the graph
            if ins[0] not in const or const[ins[0]].dtype != np.float16:
                raise ConversionError(f"{where}: only fp16 constants can be folded")
            const[outs[0]] = const[ins[0]].reshape(tensor_info(outs[0])["shape"])
            continue
        entry: dict = {"op": kind, "inputs": ins, "outputs": outs, "options": {}}
        o = entry["options"]
        if kind == "CONV_2D":
            x = _options(op, kind, tflite.Conv2DOptions)
            o.update(
                padding=PADDING[x.Padding()],
                stride=[x.StrideH(), x.StrideW()],
                dilation=[x.DilationHFactor(), x.DilationWFactor()],
                activation=_act(x.FusedActivationFunction(), where),
            )
        elif kind == "DEPTHWISE_CONV_2D":
            x = _options(op, kind, tflite.DepthwiseConv2DOptions)
            o.update(
                padding=PADDING[x.Padding()],
                stride=[x.StrideH(), x.StrideW()],
                dilation=[x.DilationHFactor(), x.DilationWFactor()],
                depth_multiplier=x.DepthMultiplier(),
                activation=_act(x.FusedActivationFunction(), where),
            )
        elif kind == "MAX_POOL_2D":
            x = _options(op, kind, tflite.Pool2DOptions)
            o.update(
                padding=PADDING[x.Padding()],
                stride=[x.StrideH(), x.StrideW()],
                filter=[x.FilterHeight(), x.FilterWidth()],
                activation=_act(x.FusedActivationFunction(), where),
            )
        elif kind == "ADD":
            x = _options(op, kind, tflite.AddOptions)
            o["activation"] = _act(x.FusedActivationFunction(), where)
        elif kind == "CONCATENATION":
            x = _options(op, kind, tflite.ConcatenationOptions)
            o.update(axis=x.Axis(), activation=_act(x.FusedActivationFunction(), where))
        elif kind == "DEPTH_TO_SPACE":
            o["block_size"] = _options(op, kind, tflite.DepthToSpaceOptions).BlockSize()
        elif kind == "RESIZE_BILINEAR":
            x = _options(op, kind, tflite.ResizeBilinearOptions)
            if ins[1] not in const:
                raise ConversionError(f"{where}: the output size is not a constant")
            o.update(
                size=[int(v) for v in const[ins[1]]],
                align_corners=bool(x.AlignCorners()),
                half_pixel_centers=bool(x.HalfPixelCenters()),
            )
            entry["inputs"] = ins[:1]
        elif kind == "PAD":
            if ins[1] not in const:
                raise ConversionError(f"{where}: the paddings are not a constant")
            o["paddings"] = const[ins[1]].astype(int).tolist()
            entry["inputs"] = ins[:1]
        elif kind == "RESHAPE":
            o["shape"] = tensor_info(outs[0])["shape"]
            entry["inputs"] = ins[:1]
        elif kind in ("LOGISTIC", "PRELU"):  # PRELU's slopes are its second input
            pass
        else:
            raise ConversionError(f"{where}: operator type not supported by the converter")
        ops.append(entry)

    used = {t for entry in ops for t in entry["inputs"] if t >= 0}
    produced = {t for entry in ops for t in entry["outputs"]}
    inputs = [int(v) for v in graph.InputsAsNumpy()]
    outputs = [int(v) for v in graph.OutputsAsNumpy()]
    constants = {t for t in used if t in const}
    missing = used - constants - produced - set(inputs)
    if missing:
        raise ConversionError(f"{source}: tensors {sorted(missing)} are read but never made")
    for t in constants:
        if const[t].dtype not in (np.float16, np.float32):
            raise ConversionError(f"{source}: constant {t} of {const[t].dtype} stays unfolded")
    shapes = {str(t): tensor_info(t)["shape"] for t in sorted(produced | set(inputs))}
    description = {
        "format": GRAPH_FORMAT,
        "source": source,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "inputs": [{"id": t, **tensor_info(t)} for t in inputs],
        "outputs": [{"id": t, **tensor_info(t)} for t in outputs],
        "constants": {str(t): tensor_info(t)["shape"] for t in sorted(constants)},
        "shapes": shapes,
        "ops": ops,
    }
    weights = {f"t{t}": np.ascontiguousarray(const[t]) for t in sorted(constants)}
    return description, weights


def graph_json(description: dict) -> str:
    """The JSON text: one op, constant or shape per line, so a diff or a reader can follow."""
    lines = ["{"]
    items = list(description.items())
    for n, (key, value) in enumerate(items):
        end = "," if n < len(items) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"  {json.dumps(v)}" for v in value)
            lines.append(f"{json.dumps(key)}: [\n{rows}\n]{end}")
        elif isinstance(value, dict):
            rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{json.dumps(key)}: {{\n{rows}\n}}{end}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}{end}")
    return "\n".join(lines) + "\n}\n"


def find_wheel(pattern: str) -> Path:
    found = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).exists() else [])
    if not found:
        raise ConversionError(
            f"{pattern}: no such wheel; get it with `pip download mediapipe==0.10.14 --no-deps`"
        )
    if len(found) > 1:
        raise ConversionError(f"{pattern}: matches {len(found)} files; name one")
    return Path(found[0])


def convert(wheel: Path, out: Path) -> list[Path]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        licences = [n for n in names if re.fullmatch(r"mediapipe-[^/]+\.dist-info/LICENSE", n)]
        if not licences:
            raise ConversionError(
                f"{wheel}: no mediapipe-*.dist-info/LICENSE; not a mediapipe wheel"
            )
        version = re.fullmatch(r"mediapipe-(.+)\.dist-info/LICENSE", licences[0]).group(1)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, member in MODELS.items():
            if member not in names:
                raise ConversionError(f"{wheel}: has no {member}")
            description, weights = convert_model(zf.read(member), member)
            description["mediapipe_version"] = version
            save_file(weights, str(out / f"{name}.safetensors"), metadata={"source": member})
            (out / f"{name}.json").write_text(graph_json(description))
            (out / f"{name}.safetensors").chmod(0o644)
            written += [out / f"{name}.safetensors", out / f"{name}.json"]
            size = sum(w.nbytes for w in weights.values()) / 2**20
            print(
                f"{member}: {len(description['ops'])} ops, {len(weights)} constants, {size:.1f} MB"
            )
        (out / "LICENSE").write_bytes(zf.read(licences[0]))
        written.append(out / "LICENSE")
    if version != "0.10.14":
        print(f"warning: mediapipe {version}; the project's code was checked against 0.10.14")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--wheel", required=True, help="the mediapipe wheel (a glob is fine)")
    p.add_argument("--out", type=Path, default=Path("keypoints/mediapipe_weights"))
    args = p.parse_args(argv)
    try:
        for path in convert(find_wheel(args.wheel), args.out):
            print(f"wrote {path}")
    except (ConversionError, zipfile.BadZipFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
