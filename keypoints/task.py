"""Training the keypoint network: `python train.py --config configs/keypoints-*.yaml`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from common.image_io import load_image
from common.training import (
    OptimConfig,
    RunContext,
    TrainConfig,
    TrainingTask,
    adamw_with_schedule,
    unwrap,
)
from keypoints.data import Item, KeypointAugmentConfig, KeypointDataset, person_free_images
from keypoints.draw import draw_skeleton
from keypoints.evaluate import coco_detections, pckh_report, predict_items
from keypoints.metrics import oks_ap
from keypoints.model import PoseNet, PoseNetConfig
from keypoints.predict import KeypointPredictor
from keypoints.sources import keypoint_source


@dataclass
class KeypointDataConfig:
    # Where the people come from: `name` picks a source of keypoints.sources, the other
    # keys are that source's (a DeepFashion-layout root, or COCO files).
    source: Any = field(default_factory=lambda: {"name": "deepfashion"})
    sigma: float = 2.0  # heatmap Gaussian, in heatmap cells
    missing_weight: float = 1.0  # loss weight of absent keypoints (learn to say "none")
    negatives: str = ""  # a folder of person-free images (SynthFashion: backgrounds/train)
    negative_probability: float = 0.0  # chance a sample is a person-free crop
    augment: KeypointAugmentConfig = field(default_factory=KeypointAugmentConfig)

    def __post_init__(self) -> None:
        self.source = keypoint_source(self.source)


@dataclass
class HeatmapLossConfig:
    # Pixels weigh 1 + foreground_weight * target: the few pixels of a peak are not
    # drowned by the empty background (0 = plain MSE, as SimpleBaseline).
    foreground_weight: float = 0.0


@dataclass
class KeypointEvalConfig:
    max_images: int = 400  # of the validation split (0 = all)
    flip_test: bool = True
    threshold: float = 0.2
    person_threshold: float = 0.5
    batch_size: int = 32


@dataclass
class KeypointsConfig:
    task: Literal["keypoints"] = "keypoints"
    model: PoseNetConfig = field(default_factory=PoseNetConfig)
    data: KeypointDataConfig = field(default_factory=KeypointDataConfig)
    loss: HeatmapLossConfig = field(default_factory=HeatmapLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: KeypointEvalConfig = field(default_factory=KeypointEvalConfig)


def heatmap_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, foreground_weight: float = 0.0
) -> torch.Tensor:
    """Per-keypoint weighted mean squared error of heatmaps ([B, K, h, w], weight [B, K]),
    pixels weighted 1 + foreground_weight * target."""
    squared = (pred.float() - target) ** 2
    if foreground_weight:
        squared = squared * (1.0 + foreground_weight * target)
    per_point = squared.mean(dim=(-2, -1))  # [B, K]
    return (per_point * weight).sum() / weight.sum().clamp_min(1.0)


class KeypointsTask(TrainingTask):
    name = "keypoints"
    Config = KeypointsConfig

    def __init__(self, config: KeypointsConfig) -> None:
        self.config = config

    def _items(self, train: bool) -> list[Item]:
        h, w = self.config.model.input_size
        return self.config.data.source.items(train, aspect=w / h)

    def check(self) -> None:
        d = self.config.data
        d.source.check()
        if d.negatives:
            person_free_images(d.negatives)

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        self.model = ctx.wrap(PoseNet(cfg.model))
        self.opt, self.schedule = adamw_with_schedule(self.model, cfg.optim, cfg.train.steps)
        self.train_set = KeypointDataset(
            self._items(train=True),
            cfg.model.input_size,
            heatmap_stride=cfg.model.heatmap_stride,
            sigma=cfg.data.sigma,
            augment=cfg.data.augment,
            missing_weight=cfg.data.missing_weight,
            negatives=person_free_images(cfg.data.negatives) if cfg.data.negatives else None,
            negative_probability=cfg.data.negative_probability,
        )
        self._val_items: list[Item] | None = None

    def dataset(self) -> Dataset:
        return self.train_set

    def train_step(self, batch: dict[str, torch.Tensor], ctx: RunContext) -> dict[str, Any]:
        self.model.train()
        with ctx.autocast():
            pred = self.model(batch["image"])
        loss = heatmap_loss(
            pred, batch["target"], batch["weight"], self.config.loss.foreground_weight
        )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.schedule.step()
        return {"loss": loss.detach() * 1000, "lr": self.schedule.get_last_lr()[0]}

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, Any]:
        return {"adamw": self.opt, "schedule": self.schedule}

    def describe(self) -> dict[str, Any]:
        return {"model": {"class": "PoseNet", "config": asdict(self.config.model)}}

    def _predictor(self, ctx: RunContext) -> KeypointPredictor:
        e = self.config.eval
        return KeypointPredictor(
            unwrap(self.model),
            device=ctx.device,
            flip_test=e.flip_test,
            threshold=e.threshold,
            person_threshold=e.person_threshold,
            sigma=self.config.data.sigma,
        )

    def val_items(self) -> list[Item]:
        if self._val_items is None:
            items = self._items(train=False)
            n = self.config.eval.max_images
            if n and len(items) > n:  # a fixed, spread-out subset
                items = [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]
            self._val_items = items
        return self._val_items

    def evaluate(self, ctx: RunContext) -> dict[str, float]:
        items = self.val_items()
        preds = predict_items(
            self._predictor(ctx), items, self.config.eval.batch_size, progress=False
        )
        self.model.train()
        report = pckh_report([p.keypoints for p in preds], [it.keypoints for it in items])
        metrics = {
            "pckh@0.5": report["pckh@0.5"],
            "pckh_points": float(report["points"]),
            "pckh_skipped_images": float(report["skipped_images"]),
        }
        annotations = self.config.data.source.oks_annotations()
        if annotations:
            ap = oks_ap(annotations, coco_detections(items, preds))
            metrics.update({f"oks_{k}": v for k, v in ap.items()})
        return metrics

    def sample(self, ctx: RunContext) -> np.ndarray | None:
        items = self.val_items()[:8]
        predictor = self._predictor(ctx)
        images = [load_image(it.path) for it in items]
        preds = predictor.predict_many(images, [it.box for it in items])
        self.model.train()
        tiles = []
        h = max(img.shape[0] for img in images)
        for img, p in zip(images, preds, strict=True):
            drawn = draw_skeleton(img, p.keypoints)
            pad = np.full((h, img.shape[1], 3), 255, np.uint8)
            pad[: img.shape[0]] = drawn
            tiles.append(pad)
        return np.concatenate(tiles, axis=1)
