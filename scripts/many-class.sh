#!/usr/bin/env bash
# The long-tailed comparison on many classes (the generated kanji set, IF 100) or on Fashion-MNIST at
# IF 1000 (--fmnist): per seed ONE pre-training (run ce-s<seed>: CE is that pre-trained model itself),
# shared through --model.init by cRT, MiSLAS, BTM (+ post-train) and BTM-FC (and LIFT / MORE when asked).
# Every run holds out a balanced validation split (--data.valPerClass) and reports it next to the test
# set. Re-running skips finished runs and resumes interrupted ones. Then the tables (test and validation).
#
#   bash scripts/many-class.sh [--fmnist] [--seeds "0 1 2"] [--runs DIR] [--classes K] [--train N]
#        [--test N] [--val V] [--if IF] [--epochs E] [--btm-epochs E] [--lift] [--more] [--ablation]
#        [-- extra btm run flags]
#
# --ablation: instead, on the first seed's shared pre-training, the BTM merge (pretrain -> btm, no
# post-train, no per-fine-tune rows) with the fine-tune learning rate swept (0.001, 0.003, 0.01, 0.03)
# and what the fine-tunes train (backbone, classifier; at lr 0.01); tabled on the validation split
# (choose there) and on the test set.
#
# Defaults (kanji): 300 classes, 300 training / 30 test images per class, 20 per class held out for
# validation, IF 100, 25 pre-training epochs, 5 BTM epochs per fine-tune (a subset holds 10 images of
# each of the classes: 3000 images). Fashion-MNIST: IF 1000, the cpu preset's BTM (30 epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=kanji; SEEDS="0 1 2"; RUNS=""; K=300; TRAIN=300; TEST=30; VAL=20; IF=""; EPOCHS=25; BTM_EPOCHS=""
LIFT=0; MORE=0; ABLATION=0; EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fmnist) DATASET=fashion-mnist ;;
    --seeds) SEEDS=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --classes) K=$2; shift ;;
    --train) TRAIN=$2; shift ;;
    --test) TEST=$2; shift ;;
    --val) VAL=$2; shift ;;
    --if) IF=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --btm-epochs) BTM_EPOCHS=$2; shift ;;
    --lift) LIFT=1 ;;
    --more) MORE=1 ;;
    --ablation) ABLATION=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "many-class.sh: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$DATASET" = kanji ]; then
  RUNS=${RUNS:-runs-kanji}; IF=${IF:-100}; BTM_EPOCHS=${BTM_EPOCHS:-5}
  DATA=(--data.dataset kanji --data.kanji.numClasses "$K" --data.kanji.trainPerClass "$TRAIN" --data.kanji.testPerClass "$TEST")
else
  RUNS=${RUNS:-runs-fmnist-if1000}; IF=${IF:-1000}; BTM_EPOCHS=${BTM_EPOCHS:-30}
  DATA=(--data.dataset fashion-mnist)
fi
COMMON=("${DATA[@]}" --data.imbalanceFactor "$IF" --data.valPerClass "$VAL" --pretrain.epochs "$EPOCHS" --btm.epochs "$BTM_EPOCHS" "${EXTRA[@]}")
BTM="node dist/cli.js"

# one run: skipped when complete, resumed when interrupted
run() {
  local name=$1; shift
  local dir="$RUNS/$name"
  if [ -f "$dir/results.json" ] && grep -q '"status": "complete"' "$dir/results.json"; then echo "== $name: complete, skipped"; return; fi
  local resume=(); [ -f "$dir/state.json" ] && resume=(--resume)
  echo "== $name ($(date -u +%H:%M:%S))"
  $BTM run --name "$name" --runDir "$RUNS" --quiet "${resume[@]}" "$@" "${COMMON[@]}"
}

if [ "$ABLATION" = 1 ]; then
  # pretrain -> btm only: the merged model is what these settings change (post-training would follow the same for all)
  s=${SEEDS%% *}
  run "ce-s$s" --preset ce --seed "$s"
  abl() { local name=$1; shift; run "$name-s$s" --preset btm --pipeline '["pretrain","btm"]' --btm.evalEach false --seed "$s" --model.init "$RUNS/ce-s$s/pretrain.safetensors" "$@"; }
  for lr in 0.01 0.003 0.03 0.001; do abl "merge-all-lr$lr" --btm.lr "$lr"; done
  for t in backbone classifier; do abl "merge-$t-lr0.01" --btm.trainable "$t"; done
  dirs=("$RUNS/ce-s$s"); for n in all-lr0.001 all-lr0.003 all-lr0.01 all-lr0.03 backbone-lr0.01 classifier-lr0.01; do dirs+=("$RUNS/merge-$n-s$s"); done
  for set in val test; do
    echo; echo "## $set set"
    $BTM report "${dirs[@]}" --markdown --set "$set" --rows '^(?!initial model$)'
  done
  exit 0
fi

METHODS=(crt mislas btm btm-fc)
[ "$LIFT" = 1 ] && METHODS+=(lift)
for s in $SEEDS; do
  run "ce-s$s" --preset ce --seed "$s"
  for m in "${METHODS[@]}"; do
    run "$m-s$s" --preset "$m" --seed "$s" --model.init "$RUNS/ce-s$s/pretrain.safetensors"
  done
  # MORE changes the pre-training itself: a pre-training of its own
  [ "$MORE" = 1 ] && run "more-s$s" --preset more --seed "$s"
done

ALL=(ce); ALL+=("${METHODS[@]}"); [ "$MORE" = 1 ] && ALL+=(more)
dirs=(); for m in "${ALL[@]}"; do for s in $SEEDS; do dirs+=("$RUNS/$m-s$s"); done; done
# the compact table (the shared pre-trained model appears once, as ce; no single fine-tunes) and the full one
for set in test val; do
  echo; echo "## $set set"
  $BTM report "${dirs[@]}" --markdown --set "$set" --rows '^(?!initial model$)(?!BTM fine-tune #)'
done
echo; echo "## test set, every row"
$BTM report "${dirs[@]}" --markdown
