# Sourced by the part-warp training scripts: the environment, where runs go, and the
# SynthFashion set at 256x176 both stages learn from (rendered if missing); `latest LABEL`
# is the newest run of a config.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python}  # the environment with the requirements
DATA=${DATA:-data/synthfashion-256}
RUNS=${RUNS:-runs}
if [ ! -f "$DATA/manifest.json" ]; then
    "$PY" -m synth --out "$DATA" --identities 10000 --poses 4 --size 256x176 \
        --set dataset.faces=false --set dataset.background_fraction=0.0 --workers 2 --quiet
fi
latest() { ls -d "$RUNS"/adgan/*-"$1" 2>/dev/null | sort | tail -n 1; }
