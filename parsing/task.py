"""Training the dense network: `python train.py --config configs/parsing-*.yaml` (or
`densepose-*.yaml`). Both task names run this class; the model's `heads` decide which
losses and metrics apply.

Metrics are computed at the network's input resolution on the validation split (labels
and IUV warped into the input with nearest-neighbour sampling).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from common.augment import AugmentConfig
from common.training import (
    OptimConfig,
    RunContext,
    TrainConfig,
    TrainingTask,
    adamw_with_schedule,
    unwrap,
)
from parsing.data import (
    DenseDataset,
    DenseItem,
)
from parsing.densepose import encode_iuv
from parsing.guides import GuideNoiseConfig
from parsing.labels import class_map, colorize, label_set
from parsing.losses import densepose_losses, parsing_loss, sample_at
from parsing.metrics import IGNORE, confusion, densepose_point_metrics, iou_report
from parsing.model import ParserNet, ParserNetConfig, predicted_iuv
from parsing.sources import dense_source


@dataclass
class DenseDataConfig:
    # Where the people come from: `name` picks a source of parsing.sources, the other keys
    # are that source's (a DeepFashion-layout root, label PNG folders, COCO files, ...).
    source: Any = field(default_factory=lambda: {"name": "deepfashion"})
    merge: str = ""  # merge table from the source ids to the model's label set ("lip", ...)
    points_per_image: int = 128  # DensePose points sampled from a dense IUV map
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # A guided parser's guides are drawn from the ground truth with these errors in training
    # (model.guides; evaluation reads them clean).
    guide_noise: GuideNoiseConfig = field(default_factory=GuideNoiseConfig)

    def __post_init__(self) -> None:
        self.source = dense_source(self.source)


@dataclass
class DenseLossConfig:
    class_weights: tuple[float, ...] = ()  # parsing cross-entropy weights; empty = equal
    dice_weight: float = 0.5
    index_weight: float = 1.0  # DensePose terms
    uv_weight: float = 1.0
    coarse_weight: float = 1.0


@dataclass
class DenseEvalConfig:
    max_images: int = 300  # of the validation split (0 = all)
    batch_size: int = 16
    flip_test: bool = False  # parsing: average with the mirrored image's prediction


@dataclass
class DenseConfig:
    task: Literal["parsing", "densepose"] = "parsing"
    model: ParserNetConfig = field(default_factory=ParserNetConfig)
    data: DenseDataConfig = field(default_factory=DenseDataConfig)
    loss: DenseLossConfig = field(default_factory=DenseLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: DenseEvalConfig = field(default_factory=DenseEvalConfig)


def dense_loss(
    out: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    cfg: DenseLossConfig,
    heads: tuple[str, ...],
    class_weights: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """All terms by name, and `loss`, the weighted total that is optimised."""
    terms: dict[str, torch.Tensor] = {}
    total = out[next(iter(out))].sum() * 0.0
    if "parsing" in heads:
        terms.update(
            parsing_loss(
                out["parsing"],
                batch["labels"],
                class_weights=class_weights,
                dice_weight=cfg.dice_weight,
            )
        )
        total = total + terms["parse_total"]
    if "densepose" in heads:
        terms.update(densepose_losses(out, batch))
        total = total + (
            cfg.index_weight * terms["dp_index"]
            + cfg.uv_weight * (terms["dp_u"] + terms["dp_v"])
            + cfg.coarse_weight * terms["dp_coarse"]
        )
    terms["loss"] = total
    return terms


class DenseTask(TrainingTask):
    Config = DenseConfig

    def __init__(self, config: DenseConfig) -> None:
        self.config = config
        self.name = config.task
        self._val: DenseDataset | None = None

    # -- data -----------------------------------------------------------------------

    def items(self, train: bool) -> list[DenseItem]:
        h, w = self.config.model.input_size
        return self.config.data.source.items(train, aspect=w / h)

    def _dataset(self, train: bool, augment: AugmentConfig | None) -> DenseDataset:
        cfg = self.config
        return DenseDataset(
            self.items(train),
            cfg.model.input_size,
            heads=cfg.model.heads,
            label_set_name=cfg.model.label_set,
            merge=cfg.data.merge,
            augment=augment,
            points_per_image=cfg.data.points_per_image,
            mirror_densepose=cfg.data.source.mirrors_densepose,
            guides=tuple(cfg.model.guides),
            guide_sigma=cfg.model.guide_sigma,
            guide_noise=cfg.data.guide_noise,
        )

    def check(self) -> None:
        cfg = self.config
        classes = label_set(cfg.model.label_set).num_classes
        if "parsing" in cfg.model.heads and classes != cfg.model.parsing_classes:
            raise ValueError(
                f"model.label_set {cfg.model.label_set!r} has {classes} classes, "
                f"model.parsing_classes says {cfg.model.parsing_classes}"
            )
        weights = cfg.loss.class_weights
        if weights and len(weights) != cfg.model.parsing_classes:
            raise ValueError(
                f"loss.class_weights has {len(weights)} values for "
                f"{cfg.model.parsing_classes} classes"
            )
        source = cfg.data.source
        if not source.has_parsing and "parsing" in cfg.model.heads:
            raise ValueError(
                f"data.source {source.name!r} has no parsing labels: use heads: [densepose]"
            )
        source.check()
        for train in (True, False):
            if not self.items(train):
                what = "training" if train else "validation"
                raise ValueError(f"data.source: the {what} split holds no items")

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        self.model = ctx.wrap(ParserNet(cfg.model))
        self.opt, self.schedule = adamw_with_schedule(self.model, cfg.optim, cfg.train.steps)
        self.train_set = self._dataset(True, cfg.data.augment)
        weights = cfg.loss.class_weights
        self.class_weights = torch.tensor(weights, device=ctx.device) if weights else None

    def dataset(self) -> Dataset:
        return self.train_set

    def train_step(self, batch: dict[str, torch.Tensor], ctx: RunContext) -> dict[str, Any]:
        self.model.train()
        with ctx.autocast():
            out = self.model(batch["image"], batch.get("guides"))
        terms = dense_loss(
            out, batch, self.config.loss, self.config.model.heads, self.class_weights
        )
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        self.schedule.step()
        return {k: v.detach() for k, v in terms.items()} | {"lr": self.schedule.get_last_lr()[0]}

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, Any]:
        return {"adamw": self.opt, "schedule": self.schedule}

    def describe(self) -> dict[str, Any]:
        return {"model": {"class": "ParserNet", "config": asdict(self.config.model)}}

    # -- evaluation -----------------------------------------------------------------

    def val_set(self) -> DenseDataset:
        if self._val is None:
            data = self._dataset(False, None)
            n = self.config.eval.max_images
            if n and len(data.items) > n:
                data.items = [
                    data.items[i] for i in np.linspace(0, len(data.items) - 1, n).astype(int)
                ]
            self._val = data
        return self._val

    @torch.no_grad()
    def evaluate(self, ctx: RunContext) -> dict[str, float]:
        return evaluate_dense(
            unwrap(self.model), self.val_set(), self.config, ctx.device, ctx.autocast
        )

    @torch.no_grad()
    def sample(self, ctx: RunContext) -> np.ndarray | None:
        model = unwrap(self.model).eval()
        data = self.val_set()
        batch = [data[i] for i in range(min(6, len(data)))]
        images = torch.stack([b["image"] for b in batch]).to(ctx.device)
        guides = torch.stack([b["guides"] for b in batch]).to(ctx.device) if data.guides else None
        out = model(images, guides)
        self.model.train()
        rows = [(images.permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)]
        if "parsing" in out:
            palette = label_set(self.config.model.label_set).palette
            rows.append(
                np.stack([colorize(p, palette) for p in class_map(out["parsing"]).cpu().numpy()])
            )
        if "index" in out:
            rows.append(
                np.stack([iuv_picture(*iuv) for iuv in zip(*predicted_iuv(out), strict=True)])
            )
        return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)


def iuv_picture(parts: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """An IUV map to look at: R = U, G = V, B = part / 24, black background."""
    rgb = encode_iuv(parts, u, v)[..., [1, 2, 0]].astype(np.float32)
    rgb[..., 2] *= 255.0 / 24.0
    return np.clip(rgb, 0, 255).astype(np.uint8)


def evaluate_dense(
    model: ParserNet,
    data: DenseDataset,
    config: DenseConfig,
    device: torch.device | str,
    autocast=None,
) -> dict[str, float]:
    """mIoU, per-class IoU, pixel accuracy (parsing); mean loss, part accuracy and U/V error
    at points (DensePose) over a dataset without augmentation."""
    model = model.eval()
    heads = config.model.heads
    classes = label_set(config.model.label_set).classes
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    points: dict[str, list[np.ndarray]] = {k: [] for k in ("pi", "pu", "pv", "ti", "tu", "tv")}
    losses: list[float] = []
    foreground = np.zeros((2, 2), np.int64)  # coarse mask: background / body
    bs = config.eval.batch_size
    for start in range(0, len(data), bs):
        samples = [data[i] for i in range(start, min(start + bs, len(data)))]
        batch = {k: torch.stack([s[k] for s in samples]).to(device) for k in samples[0]}
        guides = batch.get("guides")
        with torch.no_grad(), autocast() if autocast else contextlib.nullcontext():
            out = model(batch["image"], guides)
        out = {k: v.float() for k, v in out.items()}
        if "parsing" in heads:
            if config.eval.flip_test:
                with torch.no_grad(), autocast() if autocast else contextlib.nullcontext():
                    out["parsing"] = model.parsing_probabilities(
                        batch["image"], True, logits=out["parsing"], guides=guides
                    )
            matrix += confusion(
                class_map(out["parsing"]).cpu(), batch["labels"].cpu(), len(classes)
            )
        if "densepose" in heads:
            losses.append(float(densepose_losses(out, batch)["densepose_loss"]))
            body = batch["coarse"].cpu()
            body = torch.where(body == IGNORE, body, (body > 0).to(body.dtype))
            foreground += confusion((class_map(out["coarse"]) > 0).cpu(), body, 2)
            valid = batch["point_valid"]
            index = class_map(sample_at(out["index"], batch["points"]))  # [B, N]
            true = batch["point_index"].clamp(1, 24) - 1
            u = sample_at(out["u"], batch["points"]).gather(1, true[:, None])[:, 0]
            v = sample_at(out["v"], batch["points"]).gather(1, true[:, None])[:, 0]
            for key, value in (
                ("pi", index),
                ("pu", u),
                ("pv", v),
                ("ti", batch["point_index"]),
                ("tu", batch["point_u"]),
                ("tv", batch["point_v"]),
            ):
                points[key].append(value[valid].cpu().numpy())
    report: dict[str, float] = {}
    if "parsing" in heads:
        report.update(iou_report(matrix, classes))
    if "densepose" in heads:
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in points.items()}
        report.update(
            densepose_point_metrics(
                cat["pi"], cat["pu"], cat["pv"], cat["ti"], cat["tu"], cat["tv"]
            )
        )
        report["densepose_loss"] = float(np.mean(losses)) if losses else float("nan")
        report["foreground_iou"] = iou_report(foreground, ("background", "body")).get(
            "iou/body", float("nan")
        )
    report["images"] = float(len(data))
    return report
