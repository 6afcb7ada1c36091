#!/usr/bin/env bash
# The exact commands that made bundles/demo (2-core CPU, no GPU lent to that session).
# Each training run lands in runs/<task>/<NNNNN>-<config>/; pass the run folders below.
set -euo pipefail
cd "$(dirname "$0")/.."

# The bundle predates one photo session per identity (dataset format 2); this setting
# renders the format-1 data it was trained on, byte for byte. Drop it to train on today's.
python -m synth --out data/synthfashion-128 --identities 2000 --poses 4 --size 128x88 \
    --seed 0 --set dataset.faces=false --set dataset.session_per_identity=false \
    --workers 2                                                           # ~45 s
python train.py --config configs/keypoints-synth-cpu.yaml                 # ~12 min
# The bundle's parser (run 00004) predates the halved decoder: smp's decoder, 2,600 steps.
python train.py --config configs/parsing-synth-cpu.yaml \
    'model.decoder_channels=[]' train.steps=2600                          # ~14 min
python train.py --config configs/adgan-demo-cpu.yaml   # stopped at step 800, ~30 min

KEYPOINTS=${KEYPOINTS:-runs/keypoints/00000-keypoints-synth-cpu}
PARSER=${PARSER:-runs/parsing/00004-parsing-synth-cpu}
GENERATOR=${GENERATOR:-runs/adgan/00002-adgan-demo-cpu/checkpoints/step-00000800}
python -m adgan.bundle --keypoints "$KEYPOINTS" --parser "$PARSER" --generator "$GENERATOR" \
    --out bundles/demo --dtype int8 \
    --notes "demo: SynthFashion only (synthetic people, 64x44 generator, CPU-trained 800 steps); not for real photos"
python infer.py --source examples/model.jpg --pose examples/shopper.jpg \
    --swap upper=examples/garment.jpg --out docs/demo-result.png --panel docs/demo-panel.png
