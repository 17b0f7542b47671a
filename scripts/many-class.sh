#!/usr/bin/env bash
# The long-tailed comparison on many classes (the generated kanji set, IF 100) or on Fashion-MNIST at
# IF 1000 (--fmnist): per seed ONE pre-training (run ce-s<seed>: CE is that pre-trained model itself),
# shared through --model.init by cRT, MiSLAS, BTM (+ post-train) and BTM-FC (and LIFT / MORE when asked).
# Every run holds out a balanced validation split (--data.valPerClass) and reports it next to the test
# set. Re-running skips finished runs and resumes interrupted ones. Then the tables (test and validation).
#
#   bash scripts/many-class.sh [--fmnist] [--seeds "0 1 2"] [--runs DIR] [--classes K] [--train N]
#        [--test N] [--val V] [--if IF] [--image-size S] [--epochs E] [--btm-epochs E] [--lift] [--more]
#        [--ablation | --paper-ablations [--parts "merges trainable grid"]] [-- extra btm run flags]
#
# --ablation: instead, on the first seed's shared pre-training, the BTM merge (pretrain -> btm, no
# post-train, no per-fine-tune rows) with the fine-tune learning rate swept (0.001, 0.003, 0.01, 0.03)
# and what the fine-tunes train (last-block, backbone, classifier; at lr 0.01); tabled on the validation
# split (choose there) and on the test set.
#
# --paper-ablations: the paper's tables 6 and 7 from each seed's ONE shared pre-training (ce-s<seed>),
# pretrain -> btm only (--pipeline '["btm"]' --model.init, no post-train, no per-fine-tune rows): the merge
# strategies (uniform, adaptive-hmean/-gmean, greedy-hmean/-gmean) at N_D = 10, N_C = 10 (runs
# merge-<strategy>-s<seed>; the uniform one is nd10-nc10-s<seed>), and N_D x N_C for N_D in {2, 4, 10, 20},
# N_C in {5, 10, 20} (runs nd<N_D>-nc<N_C>-s<seed>, uniform merge), and what the fine-tunes train at
# N_D = N_C = 10 (runs trainable-<t>-s<seed> for t in $TRAINABLE, default "last-block backbone classifier"),
# and the fine-tune learning rate at N_D = N_C = 10 (part lr: runs lr<rate>-s<seed> for $LRS, default 0.001, 0.003 and
# 0.03; 0.01 is nd10-nc10); tables on the validation split and the test set, and plots (btm plot) into
# <runs>/plots/. --parts runs (and tables) only the parts named (merges trainable grid lr), e.g. --parts
# grid; without --parts: merges trainable grid.
#
# Defaults (kanji): 300 classes, 300 training / 30 test images per class, 20 per class held out for
# validation, IF 100, 25 pre-training epochs, 5 BTM epochs per fine-tune (a subset holds 10 images of
# each of the classes: 3000 images). Fashion-MNIST: IF 1000, the cpu preset's BTM (30 epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=kanji; SEEDS="0 1 2"; RUNS=""; K=300; TRAIN=300; TEST=30; VAL=20; IF=""; EPOCHS=25; BTM_EPOCHS=""; SIZE=32
LIFT=0; MORE=0; ABLATION=0; PAPER=0; PARTS="merges trainable grid"; EXTRA=()
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
    --image-size) SIZE=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --btm-epochs) BTM_EPOCHS=$2; shift ;;
    --lift) LIFT=1 ;;
    --more) MORE=1 ;;
    --ablation) ABLATION=1 ;;
    --paper-ablations) PAPER=1 ;;
    --parts) PARTS=$2; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "many-class.sh: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
for part in $PARTS; do
  case $part in merges|trainable|grid|lr) ;; *) echo "many-class.sh: unknown --parts entry '$part' (merges, trainable, grid, lr)" >&2; exit 2 ;; esac
done
if [ "$DATASET" = kanji ]; then
  RUNS=${RUNS:-runs-kanji}; IF=${IF:-100}; BTM_EPOCHS=${BTM_EPOCHS:-5}
  DATA=(--data.dataset kanji --data.kanji.numClasses "$K" --data.kanji.trainPerClass "$TRAIN" --data.kanji.testPerClass "$TEST" --data.kanji.size "$SIZE")
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
  abl merge-all-lr0.01 --btm.lr 0.01
  for t in last-block backbone classifier; do abl "merge-$t-lr0.01" --btm.trainable "$t"; done
  for lr in 0.003 0.03 0.001; do abl "merge-all-lr$lr" --btm.lr "$lr"; done
  dirs=("$RUNS/ce-s$s"); for n in all-lr0.001 all-lr0.003 all-lr0.01 all-lr0.03 backbone-lr0.01 classifier-lr0.01 last-block-lr0.01; do dirs+=("$RUNS/merge-$n-s$s"); done
  for set in val test; do
    echo; echo "## $set set"
    $BTM report "${dirs[@]}" --markdown --set "$set" --rows '^(?!initial model$)'
  done
  exit 0
fi

if [ "$PAPER" = 1 ]; then
  STRATEGIES=(adaptive-hmean adaptive-gmean greedy-hmean greedy-gmean); TRAINABLE=${TRAINABLE:-last-block backbone classifier}
  LRS=${LRS:-0.001 0.003 0.03}
  has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
  for s in $SEEDS; do
    run "ce-s$s" --preset ce --seed "$s"
    cell() { local name=$1; shift; run "$name-s$s" --preset btm --pipeline '["btm"]' --btm.evalEach false --seed "$s" --model.init "$RUNS/ce-s$s/pretrain.safetensors" "$@"; }
    # table 6 first (N_D = N_C = 10; its uniform merge is also a cell of table 7), then table 7
    cell nd10-nc10 --btm.numSubsets 10 --btm.perClass 10
    if has merges; then for m in "${STRATEGIES[@]}"; do cell "merge-$m" --btm.numSubsets 10 --btm.perClass 10 --btm.merge "$m"; done; fi
    # what the fine-tunes train, at N_D = N_C = 10 (the whole model: nd10-nc10)
    if has trainable; then for t in $TRAINABLE; do cell "trainable-$t" --btm.numSubsets 10 --btm.perClass 10 --btm.trainable "$t"; done; fi
    if has lr; then for lr in $LRS; do cell "lr$lr" --btm.numSubsets 10 --btm.perClass 10 --btm.lr "$lr"; done; fi
    if has grid; then for nc in 5 10 20; do for nd in 2 4 10 20; do cell "nd$nd-nc$nc" --btm.numSubsets "$nd" --btm.perClass "$nc"; done; done; fi
  done
  merges=(); grid=(); trainables=(); lrs=()
  for s in $SEEDS; do
    lrs+=("$RUNS/ce-s$s"); for lr in $LRS; do lrs+=("$RUNS/lr$lr-s$s"); done; lrs+=("$RUNS/nd10-nc10-s$s")
    merges+=("$RUNS/nd10-nc10-s$s"); for m in "${STRATEGIES[@]}"; do merges+=("$RUNS/merge-$m-s$s"); done
    trainables+=("$RUNS/ce-s$s" "$RUNS/nd10-nc10-s$s"); for t in $TRAINABLE; do trainables+=("$RUNS/trainable-$t-s$s"); done
    for nc in 5 10 20; do for nd in 2 4 10 20; do grid+=("$RUNS/nd$nd-nc$nc-s$s"); done; done
  done
  mkdir -p "$RUNS/plots"
  # one part's table and bars on split $set: bars_part <plot name> <rows regex> <heading> <plot title> <run dir>...
  bars_part() {
    local name=$1 rows=$2 heading=$3 title=$4; shift 4
    echo; echo "## $set set: $heading"
    $BTM report "$@" --markdown --set "$set" --rows "$rows"
    $BTM plot bars "$@" --rows "$rows" --set "$set" --metrics harmonicMean,geometricMean,lowestRecall,accuracy,few --out "$RUNS/plots/$name-$set.svg" \
      --title "$title, $set set"
  }
  for set in val test; do
    if has merges; then
      bars_part merge-strategies '^BTM merged' "merge strategies (N_D = N_C = 10)" "Merge strategies (N_D = N_C = 10)" "${merges[@]}"
    fi
    if has trainable; then
      bars_part trainable '^(pre-train|BTM merged)' "what the fine-tunes train (N_D = N_C = 10; nd10-nc10: the whole model)" \
        "What the fine-tunes train (N_D = N_C = 10; nd10-nc10 = all)" "${trainables[@]}"
    fi
    if has lr; then
      bars_part lr '^(pre-train|BTM merged)' "the fine-tune learning rate (N_D = N_C = 10; nd10-nc10: lr 0.01)" \
        "The fine-tune learning rate (N_D = N_C = 10; nd10-nc10 = 0.01)" "${lrs[@]}"
    fi
    if has grid; then
      echo; echo "## $set set: N_D x N_C (uniform merge)"
      $BTM report "${grid[@]}" --markdown --set "$set" --rows '^BTM merged'
      for metric in harmonicMean geometricMean accuracy few; do
        case $metric in harmonicMean) label=H-mean ;; geometricMean) label=G-mean ;; few) label="few-shot recall" ;; *) label=$metric ;; esac
        $BTM plot grid "${grid[@]}" --rows '^BTM merged' --set "$set" --metric "$metric" --grid 'nd(\d+)-nc(\d+)' \
          --x "N_D (fine-tunes merged)" --y "N_C (images per class)" --out "$RUNS/plots/nd-nc-$metric-$set.svg" \
          --title "N_D x N_C: $label, $set set"
      done
    fi
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
