#!/usr/bin/env bash
# The exact commands that made bundles/demo (2-core CPU with bf16 units, Intel AMX; no GPU
# was lent to that session). On a CPU without AMX the runs are fp32 and 1.5-3x slower: the
# keypoint and parser runs then stop at their 14-minute budget before their last step.
# Each training run lands in runs/<task>/<NNNNN>-<config>/; pass the run folders below.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m synth --out data/synthfashion-128 --identities 2000 --poses 4 --size 128x88 \
    --seed 0 --set dataset.faces=false --workers 2                        # ~45 s
python train.py --config configs/keypoints-synth-cpu.yaml                 # ~13 min
python train.py --config configs/parsing-synth-cpu.yaml                   # ~13 min
python train.py --config configs/adgan-demo-cpu.yaml                      # ~33 min, 2,000 steps
# then 3,000 more steps on a longer schedule (its learning rate rises back to 1e-3 and decays
# to zero from step 2,500 to 5,000): SSIM 0.325 -> 0.350 on the run's 100 evaluation pairs
python train.py --resume "${GENERATOR:-runs/adgan/00005-adgan-demo-cpu}" train.steps=5000 \
    train.max_minutes=56                                                  # ~46 min

KEYPOINTS=${KEYPOINTS:-runs/keypoints/00003-keypoints-synth-cpu}
PARSER=${PARSER:-runs/parsing/00007-parsing-synth-cpu}
GENERATOR=${GENERATOR:-runs/adgan/00005-adgan-demo-cpu}
python -m studio.bundle --keypoints "$KEYPOINTS" --parser "$PARSER" --generator "$GENERATOR" \
    --out bundles/demo --dtype int8 \
    --synthetic-only --notes "demo: SynthFashion only (synthetic people, 64x44 generator, CPU-trained 5,000 steps of 8); not for real photos"
python infer.py --source examples/model.jpg --pose examples/shopper.jpg \
    --swap upper=examples/garment.jpg --out docs/demo-result.png --panel docs/demo-panel.png
