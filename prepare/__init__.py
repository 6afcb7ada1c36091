"""Real datasets from their downloads, in the layouts every reader here expects.

    python -m prepare densepose --coco DIR --annotations DIR --out DIR   (`densepose_coco`)

DeepFashion In-shop for pose transfer:

    python -m prepare deepfashion --raw DeepFashion/In-shop --out data/deepfashion \\
        [--annotations DIR] [--keypoints CKPT] [--parser CKPT | --labels DIR --merge lip]

From the raw download (`img/{MEN,WOMEN}/<Category>/id_<ID>/<NN>_<k>_<view>.jpg`) it makes
the layout every reader here expects (ADGAN's, see the README), step by step, each step
skipping what a previous run finished:

1. `images`: the published split (`train.lst`, `test.lst`) decides which photos go where;
   each is cut to the 176/256 aspect about its centre and resized to 256x176
   (`fashion_resize/{train,test}/<flat name>.jpg`);
2. `keypoints`: the published annotation CSVs when given, else our estimator;
3. `parsing`: 8-class maps (`semantic_merge3/...npy`) from our parser, or merged from
   LIP/CIHP/ATR label PNGs;
4. `pairs`: the published pairs CSVs when given, else the published recipe;
5. `manifest.json` (counts, sources, problems, checksums) and `checksums.sha256`.

A photo that is missing, unreadable or unlisted is recorded in the manifest, not fatal.
"""
