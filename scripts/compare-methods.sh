#!/usr/bin/env bash
# cRT, MiSLAS and BTM on the same Fashion-MNIST-LT split (IF 100) with 3 seeds, CPU-sized preset.
# cRT and MiSLAS start from the BTM run's pre-trained model of the same seed (the same first stage),
# so the three differ only in what follows pre-training. Then the table: node dist/cli.js report ...
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
SEEDS=${SEEDS:-"0 1 2"}
for s in $SEEDS; do
  node dist/cli.js run --preset btm --name "btm-s$s" --seed "$s" --runDir "$RUNS" --quiet
  for m in crt mislas; do
    node dist/cli.js run --preset "$m" --name "$m-s$s" --seed "$s" --runDir "$RUNS" --quiet \
      --model.init "$RUNS/btm-s$s/pretrain.safetensors"
  done
done
node dist/cli.js report "$RUNS"/crt-s* "$RUNS"/mislas-s* "$RUNS"/btm-s* --markdown
