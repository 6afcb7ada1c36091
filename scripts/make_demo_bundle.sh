#!/usr/bin/env bash
# The exact commands that made bundles/demo on a 2-core CPU (no GPU):
#   keypoints  BlazePose, built in (converted from the mediapipe 0.10.14 wheel; real people)
#   parser     the guided ParserNet trained on SynthFashion at 192x132, reading BlazePose's
#              person mask and keypoints beside the photo (configs/parsing-guided-192-cpu.yaml)
#   generator  the part-warp generator trained on SynthFashion in bf16 on a CPU with AVX-512
#              BF16 (scripts/train_partwarp_bf16cpu.sh; scripts/train_partwarp.sh is the
#              fp32 plan for a CPU without);
#              on real photos the card shows the warp wherever it has the person (warp_trust),
#              the person is cut from the source's background 6 px wider than on the
#              synthetic photos it learnt from (warp.background_dilation), and the head
#              carries hair past a synthetic head's reach and past the photo's top edge
#              (warp.head_support, warp.head_outside_opacity); a bowed head's face stays
#              with the head instead of going down the torso (warp.head_owns_face); what
#              the source's arms hide of the torso is carried as its garment
#              (warp.torso_under_arms), and what a hand hides of a thigh as the thigh's
#              (warp.thighs_under_hands); a skirt goes in one piece (warp.skirt_in_one_piece)
# Each training run lands in runs/<task>/<NNNNN>-<config>/; pass the run folders below.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

# The generator: 128x88, then 256x176 (see the script for the budgets); it also renders
# the SynthFashion set both networks learn from (data/synthfashion-256).
if [ -z "${GENERATOR:-}" ]; then
    GENERATOR=$(scripts/train_partwarp_bf16cpu.sh | tail -n 1)
fi
# The parser: ~26 minutes of training on the same set, read at 192x132 (skip when PARSER is
# given: the committed demo's parser is run 00002 of this command's config, and
# PARSER=bundles/demo takes it from the committed bundle).
if [ -z "${PARSER:-}" ]; then
    "$PY" train.py --config configs/parsing-guided-192-cpu.yaml
    PARSER=$(ls -d runs/parsing/*-parsing-guided-192-cpu | sort | tail -n 1)
fi

"$PY" -m studio.bundle --keypoints blazepose --parser "$PARSER" --generator "$GENERATOR" \
    --out bundles/demo --dtype int8 --synthetic-only --generator-set warp_trust=1.0 \
    --generator-set warp.background_dilation=3 --generator-set warp.head_support=1.3 \
    --generator-set warp.head_outside_opacity=1.0 --generator-set warp.legs_past_the_edge=true \
    --generator-set warp.legs_edge_blur=3.0 \
    --generator-set warp.borrow_twin_limbs=true --generator-set warp.parsing_blur=0.25 \
    --generator-set warp.head_neck_reach=0.3 --generator-set warp.head_owns_face=2.0 \
    --generator-set warp.torso_under_arms=1.0 --generator-set warp.thighs_under_hands=1.0 \
    --generator-set warp.skirt_in_one_piece=true \
    --notes "demo: BlazePose keypoints (real people); guided parser (reads BlazePose's person mask and keypoints) and part-warp generator trained on SynthFashion only (synthetic people), 256x176, on a 2-core CPU; the card shows the warp wherever it has the person (warp_trust 1), the person cut wider from the source background (warp.background_dilation 3), the head's hair carried past a synthetic head's reach (warp.head_support 1.3) and past the photo's edge (warp.head_outside_opacity 1), a leg the source photo cuts off dressed on as its edge shows it (warp.legs_past_the_edge), a limb the source hides carried from its twin on the other side, mirrored (warp.borrow_twin_limbs), the parse's edges softened by half a pixel before the warp zooms them (warp.parsing_blur 0.25), the head carried a third of the way to the neck, its chin with it (warp.head_neck_reach 0.3), and a bowed head's face carried by the head alone, not by the torso below it (warp.head_owns_face 2), and what the source's arms hide of the torso carried as the torso's garment, its colour spread from what the torso shows (warp.torso_under_arms 1), and what a hand hides of a thigh as the thigh's (warp.thighs_under_hands 1), and a skirt carried in one piece by the torso down the legs' envelope instead of split along the thighs like trousers (warp.skirt_in_one_piece)"
"$PY" infer.py --source examples/model.jpg --pose examples/shopper.jpg \
    --out docs/demo-result.png --panel docs/demo-panel.png
