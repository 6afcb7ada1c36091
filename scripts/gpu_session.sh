#!/usr/bin/env bash
# The GPU numbers of issues 3-6 in a few device calls of at most 10 minutes each.
#
#   bash scripts/gpu_session.sh STAGE [ARGS]
#
#   prepare                 install the carried wheels (.whl/) and render SynthFashion at
#                           256x176 into data/synthfashion (skipped when it is there)
#   bench                   bench/{keypoints,parsing,adgan,pipeline}_speed.py on the GPU
#   train TASK [KEY=VALUE]  python train.py --config configs/TASK-synth-gpu.yaml KEY=VALUE...
#                           (TASK: keypoints, parsing, densepose, adgan); the run's own final
#                           evaluation is the number to report
#
# Every stage runs `prepare` first (a fresh machine has neither wheels nor data) and writes
# its log to $OUT/STAGE[-TASK].log, which the device tool brings back. The training schedules
# are step-based: when a call has fewer minutes than a config assumes, lower train.steps with
# it (the bench's steps/s says how many fit) rather than only train.max_minutes, or the
# learning rate never decays. Prepare the wheels once on the development machine (.whl/ is
# git-ignored, so a device call must name it in its carry):
#
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl segmentation_models_pytorch kornia kornia_rs \
#       lpips pycocotools pytorch-fid
#
# Example call (one device `run`, carry [".whl"]):
#   bash scripts/gpu_session.sh train keypoints train.steps=6000 train.max_minutes=8
#
# SMOKE=1 runs every stage on this CPU with a 20-person dataset and 2 training steps: a check
# of the script itself, not a measurement.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-gpu-out}
DATA=${DATA:-data/synthfashion}
IDENTITIES=${IDENTITIES:-4000}
SMOKE=${SMOKE:-0}
WORKERS=$(nproc)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if [[ $SMOKE == 1 ]]; then
    DATA=${SMOKE_DATA:-/tmp/synthfashion-smoke}
    IDENTITIES=20
fi

prepare() {
    if [[ -d .whl ]] && ! python3 -c "import segmentation_models_pytorch, kornia, lpips, pycocotools, pytorch_fid" 2>/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH=/tmp/site:.
    if [[ ! -f $DATA/manifest.json ]]; then
        # faces are for the face-parsing configs, not these; the swap set is ADGAN's test
        python3 -m synth --out "$DATA" --identities "$IDENTITIES" --poses 4 --size 256x176 \
            --seed 0 --set dataset.faces=false --workers "$WORKERS"
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
}

bench() {
    local quick=()
    [[ $SMOKE == 1 ]] && quick=(--repeats 2)
    python3 bench/keypoints_speed.py --config configs/keypoints-synth-gpu.yaml "${quick[@]}"
    python3 bench/keypoints_speed.py --config configs/keypoints-synth-cpu.yaml "${quick[@]}"
    python3 bench/parsing_speed.py --config configs/parsing-synth-gpu.yaml "${quick[@]}"
    python3 bench/parsing_speed.py --config configs/densepose-synth-gpu.yaml "${quick[@]}"
    if [[ $SMOKE == 1 ]]; then
        python3 bench/adgan_speed.py --size 64x44 --train-steps 1 --infer-batch 1 --repeats 1
        python3 bench/pipeline_speed.py --batches 1 --repeats 1
    else
        python3 bench/adgan_speed.py --infer-batch 1 64 256
        python3 bench/pipeline_speed.py --full-size
        python3 bench/pipeline_speed.py
    fi
}

train() {
    local task=$1
    shift
    local args=(--config "configs/$task-synth-gpu.yaml")
    [[ $SMOKE == 1 ]] && args+=(--runs /tmp/gpu-session-smoke-runs)
    if [[ $task == adgan ]]; then args+=("data.root=$DATA"); else args+=("data.source.root=$DATA"); fi
    [[ $task == keypoints ]] && args+=("data.negatives=$DATA/backgrounds/train")
    if [[ $SMOKE == 1 ]]; then
        args+=(train.device=cpu train.steps=2 train.batch_size=2 train.num_workers=0
            train.checkpoint_every=2)
        case $task in
            adgan) args+=(eval.max_pairs=2 eval.max_swaps=2 eval.batch_size=2) ;;
            *) args+=(eval.max_images=4) ;;
        esac
    fi
    python3 train.py "${args[@]}" "$@"
}

stage=${1:?usage: scripts/gpu_session.sh prepare|bench|train TASK [KEY=VALUE ...]}
shift
case $stage in
    prepare) prepare 2>&1 | tee "$OUT/prepare.log" ;;
    bench) { prepare && bench; } 2>&1 | tee "$OUT/bench.log" ;;
    train)
        task=${1:?train needs a task: keypoints, parsing, densepose or adgan}
        shift
        { prepare && train "$task" "$@"; } 2>&1 | tee "$OUT/train-$task.log"
        ;;
    *)
        echo "unknown stage $stage: prepare, bench or train" >&2
        exit 2
        ;;
esac
