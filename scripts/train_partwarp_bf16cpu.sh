#!/usr/bin/env bash
# The part-warp generator's 4 CPU-hours on a 2-core CPU with bf16 dot products (AVX-512
# BF16; the loop trains under bf16 autocast there): 9,000 steps of 8 at 128x88, then 13,000
# steps of 4 at the product size 256x176 from those weights, a fifth of them garment swaps.
# Steps bound both stages; a stopped stage (SIGTERM, the end of a session) continues where
# it stopped when this script runs again. Prints the finished stage 2's run folder.
source "$(dirname "$0")/partwarp_data.sh"
if [ ! -d "$DATA/swap/train" ]; then
    "$PY" -m synth --out "$DATA" --add-swaps train --swap-identities 0 --workers 2 --quiet
fi
finished() { [ -d "$1/checkpoints/step-$(printf %08d "$2")" ]; }

run_stage() {  # config label, steps, extra arguments for a fresh run
    local config=$1 steps=$2 run
    shift 2
    run=$(latest "$config" || true)
    if [ -z "$run" ]; then
        "$PY" train.py --config "configs/$config.yaml" --runs "$RUNS" data.root="$DATA" "$@" >&2
        run=$(latest "$config")
    elif ! finished "$run" "$steps"; then
        "$PY" train.py --resume "$run" >&2
    fi
    finished "$run" "$steps" || { echo "$run stopped before step $steps: run again" >&2; exit 1; }
    echo "$run"
}

stage1=$(run_stage adgan-partwarp-bf16cpu-128 9000)
run_stage adgan-partwarp-bf16cpu-256 13000 train.init="$stage1"
