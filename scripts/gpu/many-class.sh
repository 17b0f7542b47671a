#!/usr/bin/env bash
# The many-class comparison (scripts/many-class.sh) on a CUDA box without Node and without network, from
# a pack (scripts/gpu/pack.sh) and this checkout:
#   bash scripts/gpu/many-class.sh PACK.tar.xz KANJIDRAW_DATA_JSON PHASE...
# Phases: setup (unpack node + node_modules, build the addon against the box's PyTorch, tsc; kanjidraw's
# data.json where the generator looks), kanji, fmnist (IF 1000), ablation (BTM fine-tune lr and what it
# trains, seed 0, chosen on the validation split), interp (figure 1 curves as JSON). Runs go to
# $RUNS (default /root/mc-runs); the small files of every run (no checkpoints) are copied to $OUT.
# Each phase is bounded by PHASE_TIMEOUT seconds (default 540); a stopped phase resumes when run again.
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=$1 kanjidraw=$2; shift 2
W=${W:-/root/mc}
RUNS=${RUNS:-/root/mc-runs}
OUT=${OUT:-$PWD/mc-out}
mkdir -p "$W" "$RUNS" "$OUT"
LIMIT=${PHASE_TIMEOUT:-540}
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/driver.log"; }

setup() {
  if [ ! -x "$W/node/bin/node" ]; then tar -C "$W" -xJf "$pack" || return 1; fi
  export PATH="$W/node/bin:$PATH"
  [ -e node_modules ] || ln -s "$W/btm-node/node_modules" node_modules
  if [ ! -f build/Release/btm_node.node ]; then
    local prefix; prefix=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)') || return 1
    Torch_DIR="$prefix/Torch" node node_modules/cmake-js/bin/cmake-js compile --out build --parallel "$(nproc)" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; return 1; }
  fi
  node node_modules/typescript/bin/tsc -p tsconfig.json || return 1
  mkdir -p /usr/lib/python3/dist-packages/kanjidraw
  [ -f /usr/lib/python3/dist-packages/kanjidraw/data.json ] || cp "$kanjidraw" /usr/lib/python3/dist-packages/kanjidraw/data.json
  node dist/cli.js doctor | tail -5
  node -e "import('./dist/index.js').then((m) => { if (!m.cudaAvailable()) { console.error('no CUDA'); process.exit(1); } })"
}

# the small files of each run: results, metrics, charts, config, splits
collect() {
  (cd "$RUNS" && find . \( -name results.json -o -name metrics.jsonl -o -name 'recall.*' -o -name config.json -o -name split.txt -o -name val.txt -o -name '*.json.txt' \) -print0 |
    tar --null -T - -cf -) | tar -C "$OUT" -xf -
}

export PATH="$W/node/bin:$PATH"
FM=(--data.dir "$W/data/fashion-mnist")
# DEADLINE_S: every phase ends by this many seconds after the start (the small files still collected)
END=$(( $(date +%s) + ${DEADLINE_S:-100000} ))
for phase in "$@"; do
  t0=$(date +%s)
  left=$(( END - t0 - 15 ))
  [ "$left" -lt "$LIMIT" ] && LIMIT=$left
  if [ "$LIMIT" -lt 10 ]; then log "phase $phase: skipped, no time left"; continue; fi
  log "phase $phase (at most $LIMIT s)"
  case "$phase" in
    setup) setup 2>&1 | tee -a "$OUT/setup.log" ;;
    kanji) timeout "$LIMIT" bash scripts/many-class.sh --runs "$RUNS/kanji" -- --model.device cuda >>"$OUT/kanji.log" 2>&1 ;;
    fmnist) timeout "$LIMIT" bash scripts/many-class.sh --fmnist --runs "$RUNS/fmnist" -- --model.device cuda "${FM[@]}" >>"$OUT/fmnist.log" 2>&1 ;;
    ablation) timeout "$LIMIT" bash scripts/many-class.sh --ablation --runs "$RUNS/kanji" -- --model.device cuda >>"$OUT/ablation.log" 2>&1 ;;
    interp)
      K=(--data.dataset kanji --data.imbalanceFactor 100 --data.valPerClass 20 --model.device cuda)
      timeout "$LIMIT" node dist/cli.js interpolate "$RUNS/kanji/ce-s0/pretrain.safetensors" "$RUNS/kanji/btm-s0/btm/finetune-0.safetensors" --steps 11 --json "${K[@]}" >"$OUT/interp-finetune.json.txt" 2>>"$OUT/interp.log"
      timeout "$LIMIT" node dist/cli.js interpolate "$RUNS/kanji/ce-s0/pretrain.safetensors" "$RUNS/kanji/btm-s0/btm/merged.safetensors" --steps 11 --json "${K[@]}" >"$OUT/interp-merged.json.txt" 2>>"$OUT/interp.log" ;;
    *) log "unknown phase $phase" ;;
  esac
  rc=$?
  log "phase $phase: exit $rc after $(( $(date +%s) - t0 )) s"
  collect
done
