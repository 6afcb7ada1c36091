#!/usr/bin/env bash
# The part-warp generator of the demo bundle, on a 2-core CPU, in two stages: 128x88, then
# the product size 256x176 from stage 1's weights. Each stage stops at its time budget with
# a checkpoint; run the script again (or `python train.py --resume RUN`) to continue one.
#   STAGE1_MINUTES=60 STAGE2_MINUTES=34 MORE_MINUTES=70 scripts/train_partwarp.sh
source "$(dirname "$0")/partwarp_data.sh"

stage1=$(latest adgan-partwarp-cpu || true)
if [ -z "$stage1" ]; then
    "$PY" train.py --config configs/adgan-partwarp-cpu.yaml --runs "$RUNS" \
        data.root="$DATA" train.max_minutes="${STAGE1_MINUTES:-60}"
    stage1=$(latest adgan-partwarp-cpu)
fi
stage2=$(latest adgan-partwarp-256-cpu || true)
if [ -z "$stage2" ]; then
    "$PY" train.py --config configs/adgan-partwarp-256-cpu.yaml --runs "$RUNS" \
        data.root="$DATA" train.init="$stage1" train.max_minutes="${STAGE2_MINUTES:-34}"
    stage2=$(latest adgan-partwarp-256-cpu)
fi
# The demo's generator: stage 2 stopped at step 1,814 of its 2,000 (its time budget), then
# went on to 5,000 steps (the schedule's constant rate to 3,500, then linear to zero);
# run again until it says step 5000.
stage3=$(latest adgan-partwarp-256-polish-cpu || true)
if [ -z "$stage3" ]; then
    "$PY" train.py --resume "$stage2" train.steps=5000 train.max_minutes="${MORE_MINUTES:-70}" \
        train.eval_every=1000
    if [ ! -d "$stage2/checkpoints/step-00005000" ]; then
        echo "stage 2 stopped before step 5000 (its time budget): run this script again" >&2
        exit 1
    fi
    # Stage 3: 2,800 steps from stage 2's step 5,000, a fresh Adam at half the rate.
    "$PY" train.py --config configs/adgan-partwarp-256-polish-cpu.yaml --runs "$RUNS" \
        data.root="$DATA" train.init="$stage2" train.max_minutes="${STAGE3_MINUTES:-62}"
    stage3=$(latest adgan-partwarp-256-polish-cpu)
else
    "$PY" train.py --resume "$stage3" train.max_minutes="${STAGE3_MINUTES:-62}"
fi
echo "$stage3"
