#!/usr/bin/env bash
# MORE ablation on Fashion-MNIST-LT (IF 100), pre-training only (the cpu preset's pre-training with
# E epochs instead of 25): CE, low-rank factors without the rebalancing term (A = 0), MORE with the
# sinusoidal schedule (A = 1, 10), a constant coefficient, and the KL discrepancy. Then:
#   node dist/cli.js report "$RUNS"/*-s0 --markdown
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RUNS:-runs-more}
E=${E:-8}
run() { local name=$1; shift; node dist/cli.js run --preset ce --pretrain.epochs "$E" --name "$name" --runDir "$R" --quiet "$@"; }
run ce-s0
run more-sine-a1-s0 --pretrain.more '{"rank":8,"amplitude":1}'
run more-a0-s0 --pretrain.more '{"rank":8,"amplitude":0}'
run more-const-a1-s0 --pretrain.more '{"rank":8,"amplitude":1,"schedule":"constant"}'
run more-kl-a1-s0 --pretrain.more '{"rank":8,"amplitude":1,"discrepancy":"kl"}'
run more-sine-a10-s0 --pretrain.more '{"rank":8,"amplitude":10}'
