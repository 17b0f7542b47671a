#!/usr/bin/env bash
# The many-class comparison (scripts/many-class.sh) on a CUDA box with PyTorch but without Node and
# without network. Here, into a folder the device copy carries (P):
#   node.xz (this machine's node, stripped, xz), nm.tar.gz (node_modules without the test and bench
#   tools), tree.tar.gz (this checkout's files and its dist/), kanjidraw.json (python3-kanjidraw's
#   data.json), the four Fashion-MNIST *-ubyte.gz files;
# there: mkdir -p /root/mc/repo && tar -C /root/mc/repo -xzf P/tree.tar.gz && cd /root/mc/repo &&
#   bash scripts/gpu/many-class.sh P PHASE...
# Phases: setup (node, node_modules, the addon built against the box's PyTorch, kanjidraw's data where
# the generator looks), kanji (kanji-0,1: those seeds), fmnist (IF 1000), interp (figure 1 curves, JSON), ablation (BTM fine-tune
# lr and what it trains, seed 0). Runs go to $RUNS (default /root/mc-runs). After each phase, $OUT/mc.tar.gz
# holds the logs and every run's small files (no checkpoints). DEADLINE_S bounds all phases together.
set -uo pipefail
cd "$(dirname "$0")/../.."
P=$(cd "$1" && pwd); shift
W=${W:-/root/mc}
RUNS=${RUNS:-/root/mc-runs}
OUT=${OUT:-$PWD/mc-out}
L=$W/logs
mkdir -p "$W/bin" "$W/fm" "$RUNS" "$OUT" "$L"
LIMIT=${PHASE_TIMEOUT:-540}
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$L/driver.log" "$OUT/driver.log"; }

setup() {
  [ -x "$W/bin/node" ] || { xz -dc "$P/node.xz" >"$W/bin/node" && chmod +x "$W/bin/node"; } || return 1
  [ -d node_modules/cmake-js ] || tar -xzf "$P/nm.tar.gz" || return 1
  cp "$P"/*-ubyte.gz "$W/fm/"
  if [ ! -f build/Release/btm_node.node ]; then
    local prefix; prefix=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)') || return 1
    Torch_DIR="$prefix/Torch" node node_modules/cmake-js/bin/cmake-js compile --out build --parallel "$(nproc)" >"$L/build.log" 2>&1 || { tail -30 "$L/build.log"; return 1; }
  fi
  mkdir -p /usr/lib/python3/dist-packages/kanjidraw
  cp "$P/kanjidraw.json" /usr/lib/python3/dist-packages/kanjidraw/data.json
  node dist/cli.js doctor | tail -4
  node -e "import('./dist/index.js').then((m) => { if (!m.cudaAvailable()) { console.error('no CUDA'); process.exit(1); } })"
}

# the logs and the small files of each run (results, metrics, charts, config, splits) in one archive
collect() {
  (cd "$RUNS" && find . \( -name results.json -o -name metrics.jsonl -o -name 'recall.*' -o -name config.json -o -name split.txt -o -name val.txt \) -print0 |
    tar --null -T - -cf "$W/runs.tar")
  tar -C "$W" -czf "$OUT/mc.tar.gz.tmp" runs.tar logs && mv "$OUT/mc.tar.gz.tmp" "$OUT/mc.tar.gz"
}

export PATH="$W/bin:$PATH"
FM=(--data.dir "$W/fm")
# DEADLINE_S: every phase ends by this many seconds after the start (the small files still collected)
END=$(( $(date +%s) + ${DEADLINE_S:-100000} ))
for phase in "$@"; do
  t0=$(date +%s)
  left=$(( END - t0 - 15 ))
  [ "$left" -lt "$LIMIT" ] && LIMIT=$left
  if [ "$LIMIT" -lt 10 ]; then log "phase $phase: skipped, no time left"; continue; fi
  log "phase $phase (at most $LIMIT s)"
  case "$phase" in
    setup) setup 2>&1 | tee -a "$L/setup.log" ;;
    kanji|kanji-*) # kanji-0,1: those seeds only
      seeds=(); [ "$phase" != kanji ] && seeds=(--seeds "$(echo "${phase#kanji-}" | tr , ' ')")
      timeout "$LIMIT" bash scripts/many-class.sh "${seeds[@]}" --runs "$RUNS/kanji" -- --model.device cuda >>"$L/kanji.log" 2>&1 ;;
    fmnist) timeout "$LIMIT" bash scripts/many-class.sh --fmnist --runs "$RUNS/fmnist" -- --model.device cuda "${FM[@]}" >>"$L/fmnist.log" 2>&1 ;;
    ablation) timeout "$LIMIT" bash scripts/many-class.sh --ablation --runs "$RUNS/kanji" -- --model.device cuda >>"$L/ablation.log" 2>&1 ;;
    interp)
      K=(--data.dataset kanji --data.imbalanceFactor 100 --data.valPerClass 20 --model.device cuda)
      timeout "$LIMIT" node dist/cli.js interpolate "$RUNS/kanji/ce-s0/pretrain.safetensors" "$RUNS/kanji/btm-s0/btm/finetune-0.safetensors" --steps 11 --json "${K[@]}" >"$L/interp-finetune.json" 2>>"$L/interp.log"
      timeout "$LIMIT" node dist/cli.js interpolate "$RUNS/kanji/ce-s0/pretrain.safetensors" "$RUNS/kanji/btm-s0/btm/merged.safetensors" --steps 11 --json "${K[@]}" >"$L/interp-merged.json" 2>>"$L/interp.log" ;;
    *) log "unknown phase $phase" ;;
  esac
  rc=$?
  log "phase $phase: exit $rc after $(( $(date +%s) - t0 )) s"
  collect
done
