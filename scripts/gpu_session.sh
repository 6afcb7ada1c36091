#!/usr/bin/env bash
# The GPU numbers of the project's issues in a few device calls of at most 10 minutes each.
#
#   bash scripts/gpu_session.sh STAGE [ARGS]
#
#   prepare                 install the carried wheels (.whl/) and render SynthFashion at
#                           256x176 into data/synthfashion (skipped when it is there)
#   bench                   bench/{keypoints,parsing,adgan,pipeline}_speed.py on the GPU
#   train TASK [KEY=VALUE]  python train.py --config configs/TASK-synth-gpu.yaml KEY=VALUE...
#                           (TASK: keypoints, parsing, densepose, adgan); the run's own final
#                           evaluation is the number to report
#   product                 tests/test_partwarp.py's CUDA checks (the generator's forward
#                           pass and training step on the GPU, channels_last and bf16,
#                           against fp32 on the CPU); the product's networks
#                           at batch 64 in bf16 (the part-warp generator, every keypoint
#                           backend, the guided and SCHP parsers, the whole pipeline;
#                           PRODUCT_BENCH=generator: the generator and the pipeline only);
#                           then the part-warp generator trained from scratch at 256x176
#                           (configs/adgan-partwarp-256-gpu.yaml) for what is left of DEADLINE
#                           seconds (default 520, of which RESERVE, 150, for what follows the
#                           training), its steps set from the measured step rate so
#                           that the learning rate decays to zero; then
#                           bench/generator_compare.py on the CPU route's 1,000 held-out pairs.
#                           The generator comes back in $OUT/gpu-generator/. Example call
#                           (carry [".whl"], timeout_s 590):
#                             bash scripts/gpu_session.sh product
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
#       lpips pycocotools pytorch-fid pi-heif
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
SYNTH_SET=${SYNTH_SET:-}  # more `--set KEY=VALUE` for the renderer
SMOKE=${SMOKE:-0}
WORKERS=$(nproc)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if [[ $SMOKE == 1 ]]; then
    DATA=${SMOKE_DATA:-/tmp/synthfashion-smoke}
    IDENTITIES=20
fi

install() {
    if [[ -d .whl ]] && ! python3 -c "import segmentation_models_pytorch, kornia, lpips, pycocotools, pytorch_fid, pi_heif" 2>/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH=/tmp/site:.
}

render() {
    if [[ ! -f $DATA/manifest.json ]]; then
        # faces are for the face-parsing configs, not these; the swap set is ADGAN's test
        # shellcheck disable=SC2086
        python3 -m synth --out "$DATA" --identities "$IDENTITIES" --poses 4 --size 256x176 \
            --seed 0 --set dataset.faces=false $SYNTH_SET --workers "${1:-$WORKERS}" --quiet
    fi
}

prepare() {
    install
    render
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

product_bench() {
    local quick=() gen=(--size 256x176 --train-batch 32 --infer-batch 1 64 256)
    [[ $SMOKE == 1 ]] && quick=(--repeats 1) && gen=(--size 64x44 --train-batch 2 --train-steps 1 --infer-batch 1 --repeats 1)
    # each row bounded: a slow one must not eat the training's minutes
    timeout 90 python3 bench/adgan_speed.py --config configs/adgan-partwarp-256-gpu.yaml \
        "${gen[@]}" || true
    if [[ ${PRODUCT_BENCH:-all} != generator ]]; then  # generator: it and the pipeline only
        timeout 40 python3 bench/keypoints_speed.py --gpu-only "${quick[@]}" \
            --config configs/keypoints-synth-256-cpu.yaml || true
        timeout 40 python3 bench/keypoints_speed.py --gpu-only --openpose "${quick[@]}" || true
        timeout 60 python3 bench/blazepose_speed.py --gpu-only "${quick[@]}" || true
        timeout 40 python3 bench/parsing_speed.py --gpu-only "${quick[@]}" \
            --config configs/parsing-guided-192-cpu.yaml --size 192x132 || true
        timeout 40 python3 bench/parsing_speed.py --gpu-only --schp "${quick[@]}" || true
    fi
    if [[ $SMOKE != 1 ]]; then
        timeout 60 python3 bench/pipeline_speed.py --gpu-only --gpu-batches 1 64 --repeats 3 || true
    fi
}

product() {
    local start=$SECONDS deadline=${DEADLINE:-520} reserve=${RESERVE:-150}
    install
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    # the generator on CUDA (channels_last, bf16) against the CPU first, its forward pass and
    # its training step: a few seconds
    python3 -m pytest -q -p no:cacheprovider tests/test_partwarp.py -k cuda 2>&1 \
        | tee "$OUT/cuda-tests.log" || true
    # the data renders on 12 of the cores while the (GPU-bound) benches run
    render $((WORKERS > 4 ? WORKERS - 4 : 1)) > "$OUT/prepare.log" 2>&1 &
    local renderer=$!
    product_bench 2>&1 | tee "$OUT/bench.log"
    wait $renderer
    tail -n 1 "$OUT/prepare.log"
    # the step rate on random data; the loader and the per-step logging took 15-25% of it
    # on an H200 (12-14 steps/s in the loop against 16.2 on a fixed batch)
    local rate left steps runs=${RUNS:-runs}
    rate=$(grep -m1 '| training step, ours |' "$OUT/bench.log" | awk -F'|' '{print $4}' || true)
    left=$((deadline - (SECONDS - start) - reserve))
    [[ $SMOKE == 1 ]] && rate=1 left=60
    if [[ -z $rate || $left -lt 60 ]]; then
        echo "no time left to train (rate '$rate', $left s)" >&2
        return 1
    fi
    steps=$(python3 -c "print(max(20, int($rate * 0.7 * $left)))")
    echo "training $steps steps in at most $left s (step rate $rate/s at batch 32)"
    local args=(--config configs/adgan-partwarp-256-gpu.yaml --runs "$runs" "data.root=$DATA"
        "train.steps=$steps" "train.max_minutes=$(python3 -c "print($left / 60)")"
        eval.max_pairs=200 eval.max_swaps=100)  # the comparison below scores 1,000 and 400
    if [[ $SMOKE == 1 ]]; then
        args+=(train.device=cpu train.steps=2 train.batch_size=2 train.num_workers=0
            train.checkpoint_every=2 eval.max_pairs=2 eval.max_swaps=2 eval.batch_size=2)
    fi
    python3 train.py "${args[@]}" 2>&1 | tee "$OUT/train.log" | grep -v '^adgan:' || true
    local run
    run=$(ls -d "$runs"/adgan/*-adgan-partwarp-256-gpu | sort | tail -n 1)
    local ckpt
    ckpt=$(python3 -c "from common.checkpoint import find_checkpoint; print(find_checkpoint('$run'))")
    mkdir -p "$OUT/gpu-generator"
    cp "$ckpt/config.json" "$ckpt/generator.safetensors" "$OUT/gpu-generator/"
    local sample
    sample=$(ls "$run"/samples/*.png 2>/dev/null | sort | tail -n 1 || true)
    [[ -n $sample ]] && cp "$sample" "$OUT/gpu-sample.png"
    local compare=(--pairs 1000 --swaps 400 --batch-size 64 --device cuda)
    [[ $SMOKE == 1 ]] && compare=(--pairs 4 --swaps 2 --batch-size 2 --device cpu)
    # the new run first: each row prints as it is measured, and the time may run out
    python3 bench/generator_compare.py "$run" bundles/demo warponly copy --data "$DATA" \
        --size 256x176 "${compare[@]}" 2>&1 | tee "$OUT/compare.log"
}

stage=${1:?usage: scripts/gpu_session.sh prepare|bench|train TASK|product [KEY=VALUE ...]}
shift
case $stage in
    prepare) prepare 2>&1 | tee "$OUT/prepare.log" ;;
    bench) { prepare && bench; } 2>&1 | tee "$OUT/bench.log" ;;
    train)
        task=${1:?train needs a task: keypoints, parsing, densepose or adgan}
        shift
        { prepare && train "$task" "$@"; } 2>&1 | tee "$OUT/train-$task.log"
        ;;
    product)
        # the CPU route's data (scripts/train_partwarp.sh), so the held-out pairs are its own
        [[ $SMOKE == 1 ]] || DATA=data/synthfashion-256 IDENTITIES=10000
        SYNTH_SET="--set dataset.background_fraction=0.0"
        product
        ;;
    *)
        echo "unknown stage $stage: prepare, bench, train or product" >&2
        exit 2
        ;;
esac
