"""Training ADGAN: `python train.py --config configs/adgan-*.yaml`.

One step as the reference's `optimize_parameters`: generate the target from the source
(for the share `data.swap_fraction` of items, a garment swap's ground truth from the source
and a donor), update G on L1 + perceptual + adversarial (mean of the two discriminators)
+ contextual (+ SSIM; each term weighted by `loss.<name>`, a term of weight 0 is not
computed), then update D_PP (image, source image) and D_PB (image, target pose) unless
`loss.adversarial` is 0. The generator is any registered architecture (`model.arch`).
Adam (beta1 0.5) for all three, constant learning rate, then a linear decay to zero (the
reference: 500 + 500 epochs of 4,000 pairs).

During the G update the discriminators are called unwrapped with their parameters frozen
(no wasted weight gradients, no DDP reduction); in their own updates real and fake go
through in one batch (one DDP forward per backward; instance norm keeps samples apart).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from adgan.data import PairDataConfig, PairDataset, SwapMixDataset, read_swap_pairs
from adgan.discriminator import Discriminator, DiscriminatorConfig
from adgan.evaluate import EvalConfig, evaluate_generator
from adgan.generators import DEFAULT_ARCH, build_generator, generator_config, to_image
from adgan.losses import (
    GeneratorLosses,
    LossConfig,
    discriminator_gan_loss,
    generator_gan_loss,
)
from common.training import RunContext, TrainConfig, TrainingTask, unwrap
from keypoints.draw import draw_pose
from keypoints.skeleton import KEYPOINT_NAMES


@dataclass
class AdganOptimConfig:
    lr: float = 1e-3  # generator and both discriminators
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5  # fraction of the steps at constant lr; then linear to zero


@dataclass
class AdganConfig:
    task: Literal["adgan"] = "adgan"
    # The generator: `arch` names its architecture (adgan.generators), the other keys are
    # that architecture's config dataclass, checked strictly here.
    model: Any = field(default_factory=lambda: {"arch": DEFAULT_ARCH})
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: PairDataConfig = field(default_factory=PairDataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: AdganOptimConfig = field(default_factory=AdganOptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        self.model = generator_config(self.model)


def constant_then_linear(decay_start: float, total_steps: int):
    start = int(decay_start * total_steps)

    def factor(step: int) -> float:
        if step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, total_steps - start))

    return factor


class AdganTask(TrainingTask):
    Config = AdganConfig
    name = "adgan"

    def __init__(self, config: AdganConfig) -> None:
        self.config = config
        self._val: PairDataset | None = None

    def check(self) -> None:
        d, size = self.config.data, self.config.model.image_size
        for split in (d.train_split, d.val_split):
            PairDataset(d.root, split, size, semantic_dir=d.semantic_dir)
        if d.swap_fraction > 0:
            read_swap_pairs(d.root, d.train_split)

    def setup(self, ctx: RunContext) -> None:
        self.build(ctx)
        d, cfg = self.config.data, self.config
        self.train_set = PairDataset(
            d.root,
            d.train_split,
            cfg.model.image_size,
            semantic_dir=d.semantic_dir,
            flip_probability=d.flip_probability,
        )
        if d.swap_fraction > 0:
            self.train_set = SwapMixDataset(self.train_set, d.root, d.train_split, d.swap_fraction)

    def build(self, ctx: RunContext) -> None:
        """Networks, losses, optimisers and schedules (no data: the benchmark uses this)."""
        cfg = self.config
        self.generator = ctx.wrap(build_generator(cfg.model))
        pose_ch = len(KEYPOINT_NAMES)
        self.d_pose = ctx.wrap(Discriminator(3 + pose_ch, cfg.discriminator))
        self.d_image = ctx.wrap(Discriminator(3 + 3, cfg.discriminator))
        loss_cfg = cfg.loss
        model_vgg = getattr(cfg.model, "vgg_weights", "")  # an architecture may read no VGG
        if not loss_cfg.vgg_weights and model_vgg:
            loss_cfg = LossConfig(**{**asdict(loss_cfg), "vgg_weights": model_vgg})
        self.losses = GeneratorLosses(loss_cfg).to(ctx.device)
        o = cfg.optim
        betas = (o.beta1, o.beta2)
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(trainable, lr=o.lr, betas=betas)
        self.opt_dp = torch.optim.Adam(self.d_pose.parameters(), lr=o.lr, betas=betas)
        self.opt_di = torch.optim.Adam(self.d_image.parameters(), lr=o.lr, betas=betas)
        factor = constant_then_linear(o.decay_start, cfg.train.steps)
        self.schedules = [
            torch.optim.lr_scheduler.LambdaLR(opt, factor)
            for opt in (self.opt_g, self.opt_dp, self.opt_di)
        ]

    def dataset(self) -> Dataset:
        return self.train_set

    def pose(self, keypoints: torch.Tensor, ctx: RunContext) -> torch.Tensor:
        maps = unwrap(self.generator).pose_input(keypoints)
        return maps.contiguous(memory_format=torch.channels_last) if ctx.channels_last else maps

    def train_step(self, batch: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        cfg = self.config.loss
        source, target = batch["source"], batch["target"]
        pose = self.pose(batch["target_keypoints"], ctx)  # for the pose discriminator
        self.generator.train()
        self.d_pose.train()
        self.d_image.train()
        d_pose, d_image = unwrap(self.d_pose), unwrap(self.d_image)
        for p in [*d_pose.parameters(), *d_image.parameters()]:
            p.requires_grad_(False)
        adversarial = cfg.adversarial > 0  # else the discriminators are not run at all
        donor = None
        if "take" in batch:  # garment swaps among the pairs (`data.swap_fraction`)
            keys = ("donor", "donor_parsing", "donor_keypoints", "take")
            donor = tuple(batch[k] for k in keys)
        with ctx.autocast():
            fake = self.generator(
                source,
                batch["source_parsing"],
                batch["source_keypoints"],
                batch["target_keypoints"],
                donor,
            )
            terms = self.losses(fake, target)
            if adversarial:
                terms["adversarial"] = 0.5 * (
                    generator_gan_loss(d_pose(torch.cat([fake, pose], 1)), cfg.gan)
                    + generator_gan_loss(d_image(torch.cat([fake, source], 1)), cfg.gan)
                )
        loss_g = sum(getattr(cfg, name) * term for name, term in terms.items())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for p in [*d_pose.parameters(), *d_image.parameters()]:
            p.requires_grad_(True)
        fake = fake.detach()
        d_losses = {}
        discriminators = (
            (
                ("d_image", self.d_image, self.opt_di, source),
                ("d_pose", self.d_pose, self.opt_dp, pose),
            )
            if adversarial
            else ()
        )
        for name, disc, opt, condition in discriminators:
            with ctx.autocast():
                pred = disc(
                    torch.cat([torch.cat([target, condition], 1), torch.cat([fake, condition], 1)])
                )
                real, gen = pred.chunk(2)
                loss_d = cfg.adversarial * discriminator_gan_loss(real, gen, cfg.gan)
            opt.zero_grad(set_to_none=True)
            loss_d.backward()
            opt.step()
            d_losses[name] = loss_d.detach()
        # the discriminators' schedules move only with their optimisers (at adversarial 0
        # neither runs, and torch warns of a schedule stepped before its optimiser)
        for schedule in self.schedules if adversarial else self.schedules[:1]:
            schedule.step()
        return {
            "loss_g": loss_g.detach(),
            **{k: v.detach() for k, v in terms.items()},
            **d_losses,
            "lr": self.schedules[0].get_last_lr()[0],
        }

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "d_pose": self.d_pose, "d_image": self.d_image}

    def optimizers(self) -> dict[str, Any]:
        return {
            "adam_g": self.opt_g,
            "adam_d_pose": self.opt_dp,
            "adam_d_image": self.opt_di,
            **{f"schedule_{i}": s for i, s in enumerate(self.schedules)},
        }

    def describe(self) -> dict[str, Any]:
        return {
            "generator": unwrap(self.generator).describe(),
            "d_pose": unwrap(self.d_pose).describe(),
            "d_image": unwrap(self.d_image).describe(),
        }

    # -- evaluation -----------------------------------------------------------------

    def val_set(self) -> PairDataset:
        if self._val is None:
            d = self.config.data
            self._val = PairDataset(
                d.root,
                d.val_split,
                self.config.model.image_size,
                semantic_dir=d.semantic_dir,
                target_parsing=True,
            )
        return self._val

    def evaluate(self, ctx: RunContext) -> dict[str, float]:
        generator = unwrap(self.generator)
        report = evaluate_generator(
            generator,
            self.val_set(),
            self.config.eval,
            ctx.device,
            ctx.autocast,
            swap_root=self.config.data.root,
            swap_split=self.config.data.val_split,
        )
        generator.train()
        return report

    @torch.no_grad()
    def sample(self, ctx: RunContext) -> np.ndarray | None:
        """Rows of source | target pose | generated | target for fixed validation pairs."""
        generator = unwrap(self.generator).eval()
        data = self.val_set()
        h, w = self.config.model.image_size
        rows = []
        for i in np.linspace(0, len(data) - 1, min(4, len(data))).astype(int):
            item = data[int(i)]
            kp = item["target_keypoints"]
            inputs = ("source", "source_parsing", "source_keypoints", "target_keypoints")
            with ctx.autocast():
                fake = generator(*(item[k][None].to(ctx.device) for k in inputs))
            rows.append(
                np.concatenate(
                    [
                        to_image(item["source"]),
                        draw_pose(kp.numpy(), h, w),
                        to_image(fake[0]),
                        to_image(item["target"]),
                    ],
                    axis=1,
                )
            )
        generator.train()
        return np.concatenate(rows, axis=0)
