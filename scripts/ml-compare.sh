#!/usr/bin/env bash
# Multi-label long-tailed comparison on the Fashion-MNIST mosaic set (dataset 'mosaic', IF 100 per-cell
# class draw, balanced test set): BCE pre-training (E epochs), then on that same pre-trained model
#   ml-btm: BTM (10 fine-tunes on per-class positive subsets, uniform merge) -> class-aware BCE post-train
#   ml-crt: class-aware BCE post-train alone (from ml-btm's pre-training checkpoint, --model.init)
# for each seed in SEEDS, then:  node dist/cli.js report "$RUNS"/ml-*-s* --markdown
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RUNS:-runs-ml}
E=${E:-10}
N=${N:-5000}
SEEDS=${SEEDS:-0}
common=(--runDir "$R" --quiet --data.mosaic.trainSize "$N" --data.mosaic.testSize 2000 --pretrain.epochs "$E")
for s in $SEEDS; do
  node dist/cli.js run --preset ml-btm --name "ml-btm-s$s" --seed "$s" --data.mosaic.seed "$s" "${common[@]}"
  node dist/cli.js run --preset ml-crt --name "ml-crt-s$s" --seed "$s" --data.mosaic.seed "$s" "${common[@]}" \
    --model.init "$R/ml-btm-s$s/pretrain.safetensors"
done
