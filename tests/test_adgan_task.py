"""ADGAN end to end on a tiny SynthFashion set: pair data, train.py (resume, DDP), the
evaluation CLI, attribute transfer and the errors a user can act on."""

import json
import shutil

import numpy as np
import pytest
import torch

import train
from adgan import evaluate
from adgan.data import PairDataset, SwapMixDataset, load_person, read_swap_pairs
from adgan.generators import generator_from_checkpoint, mix_appearance
from adgan.transfer import AttributeTransfer
from common.image_io import load_image
from keypoints.skeleton import flip_keypoints
from parsing.labels import component_classes
from synth.__main__ import main as synth_main
from tests.conftest import torchrun_train

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights", "ignore:.*random network")
TINY = [
    "model.image_size=[32, 24]",
    "model.pose_sigma=1.0",
    "model.channels=8",
    "model.code_size=8",
    "model.mlp_channels=16",
    "model.res_blocks=2",
    "discriminator.channels=8",
    "discriminator.blocks=1",
    "train.device=cpu",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.checkpoint_every=3",
    "train.sample_every=3",
    "train.eval_every=0",
    "train.log_every=1",
    "train.max_minutes=0",
    "eval.max_pairs=4",
    "eval.batch_size=4",
    "eval.max_swaps=3",
]


@pytest.fixture(scope="module")
def run(synth_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    args = [
        "--config",
        "configs/adgan-synth-cpu.yaml",
        "--runs",
        str(root),
        f"data.root={synth_dataset}",
        "train.steps=3",
        *TINY,
    ]
    assert train.main(args) == 0
    return next((root / "adgan").iterdir())


def test_pairs_flip_and_resize(synth_dataset):
    data = PairDataset(synth_dataset, "train", (64, 44), flip_probability=1.0, target_parsing=True)
    plain = data[0]
    flipped = data[(0, 123)]
    assert plain["source"].shape == (3, 64, 44) and plain["source_parsing"].shape == (8, 64, 44)
    assert plain["source_parsing"].sum(0).eq(1).all()  # one class per pixel
    assert torch.equal(flipped["source"], plain["source"].flip(-1))
    assert torch.equal(flipped["target_labels"], plain["target_labels"].flip(-1))
    want = flip_keypoints(plain["target_keypoints"].numpy(), 44)
    assert np.allclose(flipped["target_keypoints"].numpy(), want)
    # photos of 128x88 loaded at 64x44: keypoints scale with them
    person = data.people[data.pairs[0][0]]
    _, kp_full, _ = load_person(person, (128, 88))
    _, kp_half, _ = load_person(person, (64, 44))
    shown = kp_full[:, 0] >= 0
    assert np.allclose((kp_full[shown] + 0.5) / 2 - 0.5, kp_half[shown])


def test_training_writes_a_complete_run(run):
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("ssim", "mask_ssim", "l1", "swap_closer", "swap_l1_truth"):
        assert 0.0 <= metrics[key] <= 1.0, key
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert {"loss_g", "l1", "perceptual", "contextual", "adversarial", "d_pose", "d_image"} <= set(
        stats[0]
    )
    sample = run / "samples" / "step-00000003.png"
    from common.image_io import load_image

    assert load_image(sample).shape == (4 * 32, 4 * 24, 3)  # 4 rows: source|pose|fake|target
    checkpoint = run / "checkpoints" / "step-00000003"
    assert {p.name for p in checkpoint.glob("*.safetensors")} == {
        "generator.safetensors",
        "d_pose.safetensors",
        "d_image.safetensors",
    }


def test_resume_is_exact(synth_dataset, tmp_path):
    """3 steps, then 2 more with --resume, equal 5 steps straight, bit for bit (a constant
    learning rate, so that the two schedules agree)."""
    base = [f"data.root={synth_dataset}", "optim.decay_start=1.0", *TINY]
    config = ["--config", "configs/adgan-synth-cpu.yaml"]
    assert train.main([*config, "--runs", str(tmp_path / "a"), "train.steps=3", *base]) == 0
    resumed = next((tmp_path / "a" / "adgan").iterdir())
    assert train.main(["--resume", str(resumed), "train.steps=5"]) == 0
    assert train.main([*config, "--runs", str(tmp_path / "b"), "train.steps=5", *base]) == 0
    straight = next((tmp_path / "b" / "adgan").iterdir())
    a, b = (
        generator_from_checkpoint(resumed).state_dict(),
        generator_from_checkpoint(straight).state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_cli_and_transfer(run, synth_dataset, tmp_path, capsys):
    out = tmp_path / "generated"
    assert (
        evaluate.main(
            [
                "--checkpoint",
                str(run),
                "--max-pairs",
                "3",
                "--max-swaps",
                "2",
                "--lpips",
                "--out",
                str(out),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "ssim" in printed and "lpips" in printed and "swap_closer" in printed
    assert len(list(out.iterdir())) == 3
    assert json.loads((tmp_path / "m.json").read_text())["pairs"] == 3
    gen = AttributeTransfer(generator_from_checkpoint(run))
    swap = read_swap_pairs(synth_dataset)[0]
    people = PairDataset(synth_dataset, "test", (32, 24)).people
    shopper, shopper_kp, shopper_labels = load_person(people[swap.person], (32, 24))
    donor, donor_kp, donor_labels = load_person(people[swap.donor], (32, 24))
    _, pose, _ = load_person(people[swap.pose], (32, 24))
    own = gen.encode(shopper, shopper_labels, shopper_kp)
    other = gen.encode(donor, donor_labels, donor_kp)
    plain = gen.generate(pose, own)
    assert plain.shape == (32, 24, 3) and plain.dtype == np.uint8
    assert np.array_equal(gen.generate(pose, own, swaps={"upper": own}), plain)
    with torch.no_grad():  # a 3-step model: the change is below 1/255, look at floats
        kp = torch.as_tensor(pose[None])
        mixed = gen.generator.decode(mix_appearance(own, other, component_classes("upper")), kp)
        assert not torch.equal(mixed, gen.generator.decode(own, kp))


def test_bad_inputs_are_named(run, synth_dataset, tmp_path, capsys):
    parsing_like = tmp_path / "ckpt"
    parsing_like.mkdir()
    (parsing_like / "config.json").write_text('{"modules": {"model": {"class": "ParserNet"}}}')
    assert evaluate.main(["--checkpoint", str(parsing_like)]) == 2
    assert "not a generator checkpoint" in capsys.readouterr().err
    # a generator checkpoint whose config says one thing and whose weights another
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run / "checkpoints" / "step-00000003", bad)
    config = json.loads((bad / "config.json").read_text())
    config["modules"]["generator"]["config"]["res_blocks"] = 3
    (bad / "config.json").write_text(json.dumps(config))
    assert evaluate.main(["--checkpoint", str(bad)]) == 2
    assert "generator.safetensors" in capsys.readouterr().err
    # a pairs file naming a photo the annotation CSV does not have
    (tmp_path / "data").mkdir()
    shutil.copytree(synth_dataset / "fashion_resize", tmp_path / "data" / "fashion_resize")
    for name in ("annotation", "pairs"):
        shutil.copy(synth_dataset / f"fashion-resize-{name}-test.csv", tmp_path / "data")
    with open(tmp_path / "data" / "fashion-resize-pairs-test.csv", "a") as fh:
        fh.write("fashionMENDenimid0000999901_1front.jpg,fashionMENDenimid0000999901_2side.jpg\n")
    with pytest.raises(ValueError, match="have no keypoints in the annotation CSV"):
        PairDataset(tmp_path / "data", "test", (32, 24))
    assert (
        train.main(
            [
                "--config",
                "configs/adgan-synth-cpu.yaml",
                f"data.root={synth_dataset}",
                "model.image_size=[30, 22]",
            ]
        )
        == 2
    )
    assert "multiples of 4" in capsys.readouterr().err


@pytest.fixture(scope="module")
def swap_dataset(synth_dataset, tmp_path_factory):
    """The tiny set with swap ground truth for its training split too."""
    out = tmp_path_factory.mktemp("with-swaps") / "data"
    shutil.copytree(synth_dataset, out)
    assert synth_main(["--out", str(out), "--add-swaps", "train", "--workers", "1", "--quiet"]) == 0
    return out


def test_swaps_are_rendered_for_the_training_split_of_a_set(swap_dataset, synth_dataset, capsys):
    swaps = read_swap_pairs(swap_dataset, "train")
    assert len(swaps) >= 4  # 4 training people, up to 2 swaps each
    manifest = json.loads((swap_dataset / "manifest.json").read_text())
    assert manifest["counts"]["train"]["swaps"] == len(swaps)
    test_swaps = "swap-pairs-test.csv"  # the test split's swaps are left as they were
    assert (swap_dataset / test_swaps).read_text() == (synth_dataset / test_swaps).read_text()
    people = PairDataset(swap_dataset, "train", (128, 88)).people
    background, garment = [], []
    for s in swaps:  # the person's own photo session, the donor's garment
        own, _, own_labels = load_person(people[s.pose], (128, 88))
        truth = load_image(s.target).astype(np.float32)
        truth_labels = np.load(s.target.with_suffix(".npy"))
        diff = np.abs(truth - own).mean(-1)
        background.append(diff[(own_labels == 0) & (truth_labels == 0)].mean())
        region = np.isin(truth_labels, component_classes(s.component))
        garment.append(diff[region].mean())
    assert np.mean(background) < 6 and np.mean(garment) > 4 * np.mean(background)
    assert synth_main(["--out", str(swap_dataset / "nothing"), "--add-swaps", "train"]) == 2
    assert "no SynthFashion dataset" in capsys.readouterr().err


def test_swap_items_mix_with_the_pairs(swap_dataset):
    pairs = PairDataset(swap_dataset, "train", (64, 44))
    flipping = PairDataset(swap_dataset, "train", (64, 44), flip_probability=1.0)
    swaps = SwapMixDataset(pairs, swap_dataset, "train", 1.0)
    plain = SwapMixDataset(pairs, swap_dataset, "train", 0.0)[(0, 5)]
    swap = swaps[(0, 5)]
    assert set(swap) == set(plain)  # one batch holds both
    assert not plain["take"].any() and torch.equal(plain["donor"], plain["source"])
    assert swap["take"].any() and swap["take"].sum() <= 2  # upper, or pants and skirt
    person, target = swap["name"].split("___")
    assert person in pairs.people.annotations and target.endswith(".jpg")
    assert not torch.equal(swap["donor"], swap["source"])
    mirrored = SwapMixDataset(flipping, swap_dataset, "train", 1.0)[(0, 5)]
    for key in ("source", "donor", "target", "source_parsing", "donor_parsing"):
        assert torch.equal(mirrored[key], swap[key].flip(-1)), key
    want = flip_keypoints(swap["target_keypoints"].numpy(), 44)
    assert np.allclose(mirrored["target_keypoints"].numpy(), want)


def test_a_generator_trains_on_swaps(swap_dataset, tmp_path):
    args = [
        "--config",
        "configs/adgan-partwarp-256-swaps-cpu.yaml",
        "--runs",
        str(tmp_path),
        f"data.root={swap_dataset}",
        "data.swap_fraction=0.5",
        "model.image_size=[32, 24]",
        "model.channels=[8, 16]",
        "model.encoder_channels=[8]",
        "model.code_size=8",
        "model.style_channels=4",
        "model.res_blocks=1",
        "train.steps=2",
        *[a for a in TINY if a.startswith(("train.", "eval."))],
    ]
    assert train.main(args) == 0
    run = next((tmp_path / "adgan").iterdir())
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= metrics["swap_closer"] <= 1
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    losses = [s["loss_g"] for s in stats if "loss_g" in s]
    assert len(losses) == 2 and np.isfinite(losses).all()


@pytest.mark.slow
def test_train_py_under_torchrun_two_cpu_processes(synth_dataset, tmp_path):
    args = [
        "--config",
        "configs/adgan-synth-cpu.yaml",
        f"data.root={synth_dataset}",
        "train.steps=2",
        *TINY,
    ]
    done = torchrun_train(args, tmp_path, 29533)
    assert done.returncode == 0, done.stderr[-3000:]
    run = next((tmp_path / "adgan").iterdir())
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    assert "ssim" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
