#!/usr/bin/env bash
# Issue 10's results: CE, BTM, MORE and MORE + BTM with the same pre-training budget, per seed, on
# Fashion-MNIST-LT (IF 100, single-label) and on the multi-label mosaic set (IF 100 per cell). Per seed
# and dataset, two pre-trainings of E epochs (the cpu preset's other settings) and what follows them:
#   <d>-btm       the btm preset      CE pre-train   -> BTM (10 fine-tunes, uniform merge) -> post-train
#   <d>-morebtm   the more-btm preset MORE pre-train -> BTM -> post-train
#   <d>-more      the more preset: the post-train alone on <d>-morebtm's MORE pre-train (--model.init)
#   <d>-cepost    with CEPOST=1: the same post-train alone on <d>-btm's CE pre-train (mislas / ml-crt)
# (<d> = f: Fashion-MNIST-LT, post-train LAS + LWS + shift-BN; <d> = ml: mosaics, the ml-* presets,
# class-aware BCE post-train.) The CE and MORE rows are the runs' pre-training rows, so a seed's CE
# pre-train is shared by its CE, CE + post-train and BTM rows, its MORE pre-train by the MORE, MORE +
# post-train and MORE + BTM rows. BTM's per-member test evaluations are off (btm.evalEach false).
# Fashion-MNIST-LT's split is the same for every seed (data.splitSeed 0); the seed changes the
# initialisation, the batches and the BTM subsets, and for the mosaics also the generated sets.
# Datasets run one after the other (all seeds of the first, then the next); a run already complete is
# skipped, so a re-run finishes what is missing. Then the tables (mean ± sample std over the seeds):
#   node dist/cli.js report "$RUNS"/f-{btm,cepost,more,morebtm}-s* --markdown --rows '^(?!initial model)'
#   node dist/cli.js report "$RUNS"/ml-{btm,cepost,more,morebtm}-s* --markdown --rows '^(?!initial model)'
# Knobs (environment): RUNS (runs/more-table), SEEDS ("0 1 2"), DATASETS ("f ml"), E (pre-training
# epochs on Fashion-MNIST-LT, 25 = the cpu preset), ML_E (on the mosaics, 10), ML_N (mosaic training
# images, 10000), ML_TEST (mosaic test images, 2000), CLI (the btm entry point, dist/cli.js: point it at
# a copy of dist to keep rebuilding dist during a long run), NICE (a command prefix, e.g. "nice -n 19"),
# FLAGS (added to every run, e.g. "--model.device cuda"), F_FLAGS / ML_FLAGS (added to the Fashion-MNIST-LT /
# mosaic runs, e.g. "--data.maxPerClass 1000" / "--btm.epochs 10"), CEPOST (0; 1 adds the <d>-cepost runs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/more-table}
SEEDS=${SEEDS:-"0 1 2"}
DATASETS=${DATASETS:-"f ml"}
E=${E:-25}
ML_E=${ML_E:-10}
ML_N=${ML_N:-10000}
ML_TEST=${ML_TEST:-2000}
CLI=${CLI:-dist/cli.js}
read -r -a nice <<< "${NICE:-}"
CEPOST=${CEPOST:-0}
read -r -a flags <<< "${FLAGS:-}"
read -r -a f_flags <<< "${F_FLAGS:-}"
read -r -a ml_flags <<< "${ML_FLAGS:-}"

mkdir -p "$RUNS/logs"
# a run whose results.json says complete is skipped; the run's table goes to $RUNS/logs/<name>.txt
run() {
  local name=$1; shift
  if grep -qs '"status": "complete"' "$RUNS/$name/results.json"; then echo "$name: complete, skipped" >&2; return; fi
  echo "$(date -u +%H:%M:%S) $name" >&2
  "${nice[@]}" node "$CLI" run --name "$name" --runDir "$RUNS" --quiet --btm.evalEach false "${flags[@]}" "$@" > "$RUNS/logs/$name.txt"
}

for d in $DATASETS; do
  case $d in
    f) ce=btm; more=more; morebtm=more-btm; post=mislas; data=(--pretrain.epochs "$E" "${f_flags[@]}") ;;
    ml) ce=ml-btm; more=ml-more; morebtm=ml-more-btm; post=ml-crt
      data=(--pretrain.epochs "$ML_E" --data.mosaic.trainSize "$ML_N" --data.mosaic.testSize "$ML_TEST" "${ml_flags[@]}") ;;
    *) echo "DATASETS: unknown '$d' (f, ml)" >&2; exit 2 ;;
  esac
  for s in $SEEDS; do
    seed=(--seed "$s")
    [[ $d == ml ]] && seed+=(--data.mosaic.seed "$s")
    run "$d-btm-s$s" --preset "$ce" "${seed[@]}" "${data[@]}"
    run "$d-morebtm-s$s" --preset "$morebtm" "${seed[@]}" "${data[@]}"
    run "$d-more-s$s" --preset "$more" "${seed[@]}" "${data[@]}" --model.init "$RUNS/$d-morebtm-s$s/pretrain.safetensors"
    if [[ $CEPOST == 1 ]]; then
      run "$d-cepost-s$s" --preset "$post" "${seed[@]}" "${data[@]}" --model.init "$RUNS/$d-btm-s$s/pretrain.safetensors"
    fi
  done
done
for d in $DATASETS; do
  node "$CLI" report $(ls -d "$RUNS/$d"-{btm,cepost,more,morebtm}-s* 2>/dev/null) --markdown --rows '^(?!initial model)' || true
done
