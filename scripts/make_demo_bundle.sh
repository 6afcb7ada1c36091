#!/usr/bin/env bash
# The exact commands that made bundles/demo on a 2-core CPU (no GPU):
#   keypoints  BlazePose, built in (converted from the mediapipe 0.10.14 wheel; real people)
#   parser     ParserNet trained on SynthFashion at 128x88 (configs/parsing-synth-cpu.yaml)
#   generator  the part-warp generator trained on SynthFashion (scripts/train_partwarp.sh)
# Each training run lands in runs/<task>/<NNNNN>-<config>/; pass the run folders below.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

# The parser: SynthFashion at 128x88 and ~13 minutes of training (skip when PARSER is given;
# the committed demo's parser is run 00007 of these commands, kept from the previous demo).
if [ -z "${PARSER:-}" ]; then
    "$PY" -m synth --out data/synthfashion-128 --identities 2000 --poses 4 --size 128x88 \
        --seed 0 --set dataset.faces=false --workers 2
    "$PY" train.py --config configs/parsing-synth-cpu.yaml
    PARSER=$(ls -d runs/parsing/*-parsing-synth-cpu | sort | tail -n 1)
fi
# The generator: 128x88 then 256x176 (see the script for the budgets).
if [ -z "${GENERATOR:-}" ]; then
    scripts/train_partwarp.sh
    GENERATOR=$(ls -d runs/adgan/*-adgan-partwarp-256-cpu | sort | tail -n 1)
fi

"$PY" -m studio.bundle --keypoints blazepose --parser "$PARSER" --generator "$GENERATOR" \
    --out bundles/demo --dtype int8 --synthetic-only \
    --notes "demo: BlazePose keypoints (real people); parser and part-warp generator trained on SynthFashion only (synthetic people), 256x176, on a 2-core CPU"
"$PY" infer.py --source examples/model.jpg --pose examples/shopper.jpg \
    --out docs/demo-result.png --panel docs/demo-panel.png
