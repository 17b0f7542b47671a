#!/usr/bin/env bash
# On a CUDA box that has PyTorch (with CUDA), CMake and a C++ compiler but no Node and no network:
#   bash run.sh btm-gpu-pack.tar.xz [--no-cuda] [--quick] [--tests 'FILE...'] [--src DIR]
#                                   [--main-timeout S] [--suite-timeout S]
# Unpacks the pack made by scripts/gpu/pack.sh, builds the addon against the box's PyTorch
# (python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)'), then, each step logged,
# the most telling first:
#   doctor      node dist/cli.js doctor (CUDA must be visible unless --no-cuda)
#   cuda tests  test/native/cuda.test.ts with BTM_TEST_CUDA=1 (a missing GPU fails, never skips)
#   bench       npm run bench -- --device cuda --no-tfjs (bench/results/*.json copied out)
#   main job    node dist/cli.js run --model.device cuda (Fashion-MNIST-LT, preset btm), timed
#   tests       the whole suite with the CUDA tests enabled (BTM_TEST_CUDA=1)
# Everything lands in one folder: $OUT if set, else ./btm-gpu-out-<time>; summary.txt lists each step,
# its status and wall time. The steps go on after a failure; the exit status is 1 if any failed.
#   --no-cuda   check the flow on a machine without a GPU (CPU everywhere; not a GPU result)
#   (env BENCH_ARGS adds bench flags, e.g. BENCH_ARGS="--only btm-batched")
#   --quick     bench --quick and a main job of one epoch per stage (a smoke test, not the figures)
#   --tests     run only these test files in the last step (default: all)
#   --src DIR   build and test the sources in DIR (a checkout) instead of those packed: the pack
#               then only brings Node, node_modules and the data
#   --skip LIST  leave out these steps (comma-separated: cuda-tests, bench, main, tests)
#   --main-timeout S, --suite-timeout S   stop the main job / the whole suite after S seconds
#               (recorded as a failure with its time), so a short lease still gets every step
#   --nccl      also build the addon with BTM_NCCL=1 (build-nccl/) and run scripts/gpu/nccl-check.mjs
# PYTHON=/path/to/python picks the Python whose torch to build against (default python3).
set -uo pipefail
pack=""
cuda=1
quick=0
tests=""
src=""
main_timeout=0
suite_timeout=0
skip=","
nccl=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-cuda) cuda=0; shift ;;
    --quick) quick=1; shift ;;
    --tests) tests=$2; shift 2 ;;
    --src) src=$2; shift 2 ;;
    --main-timeout) main_timeout=$2; shift 2 ;;
    --suite-timeout) suite_timeout=$2; shift 2 ;;
    --skip) skip=",$2,"; shift 2 ;;
    --nccl) nccl=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) pack=$1; shift ;;
  esac
done
[ -n "$pack" ] && [ -f "$pack" ] || { echo "usage: bash run.sh PACK.tar.xz [--no-cuda] [--quick] [--tests 'FILES']" >&2; exit 2; }
pack=$(cd "$(dirname "$pack")" && pwd)/$(basename "$pack")
out=${OUT:-$PWD/btm-gpu-out-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" && out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/btm-gpu.XXXXXX")
trap 'rm -rf "$work"' EXIT
summary="$out/summary.txt"
: >"$summary"
failed=0

# wanted STEP: not named by --skip
wanted() { case "$skip" in *",$1,"*) echo "(skipped: $1)" | tee -a "$summary"; return 1 ;; esac; return 0; }

# step NAME LOG COMMAND...: runs COMMAND with its output in $out/LOG (and on the terminal), records status + time
step() {
  local name=$1 log=$2; shift 2
  echo "::: $name  (log: $out/$log)"
  local t0=$(date +%s) rc=0
  "$@" 2>&1 | tee "$out/$log"
  rc=${PIPESTATUS[0]}
  local secs=$(( $(date +%s) - t0 ))
  if [ "$rc" = 0 ]; then echo "$name: ok (${secs} s)" >>"$summary"; else echo "$name: FAILED (exit $rc, ${secs} s; see $log)" >>"$summary"; failed=1; fi
  return "$rc"
}

echo "::: unpack $pack"
tar -C "$work" -xJf "$pack" || { echo "run.sh: cannot unpack $pack" >&2; exit 1; }
cat "$work/PACK-INFO" | tee "$out/pack-info.txt"
if [ -n "$src" ]; then
  [ -f "$src/package.json" ] && [ -d "$src/native" ] || { echo "run.sh: --src $src is not a btm-node checkout" >&2; exit 2; }
  echo "sources: $src (instead of the packed ones)" | tee -a "$out/pack-info.txt"
  # the packed sources go first: a file moved or deleted since the pack was made must not stay behind
  (cd "$work/btm-node" && rm -rf native src test bench scripts CMakeLists.txt package.json tsconfig.json)
  tar -C "$src" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./.git --exclude=./.gpu -cf - . |
    tar -C "$work/btm-node" -xf -
fi
export PATH="$work/node/bin:$PATH"
export npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
unset npm_config_nodedir
node --version >/dev/null 2>&1 || { echo "run.sh: the packed node does not run here: $(node --version 2>&1 | head -n1) (it needs x86-64 Linux with glibc >= 2.28)" >&2; exit 1; }
python=${PYTHON:-python3}
# the Python whose torch the bench's PyTorch peer and the interop tests run
BTM_PYTHON=$(command -v "$python") && export BTM_PYTHON
cd "$work/btm-node"

environment() {
  echo "date: $(date -u)"; uname -a; echo "node $(node --version), npm $(npm --version), $(cmake --version | head -n1)"
  "$python" - <<'EOF'
import torch, torch.utils
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    print(f"  cuda:{i}", torch.cuda.get_device_name(i))
print("cmake prefix", torch.utils.cmake_prefix_path)
EOF
  command -v nvidia-smi >/dev/null && nvidia-smi || echo "(no nvidia-smi)"
}
step "environment" environment.txt environment

prefix=$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
  { echo "run.sh: $python cannot import torch (set PYTHON=/path/to/python with PyTorch)" >&2; exit 1; }
if [ -f "$prefix/Torch/TorchConfig.cmake" ]; then
  export Torch_DIR="$prefix/Torch"
else
  # e.g. Debian's python3-torch: its libtorch's CMake files live with libtorch-dev instead
  echo "run.sh: $prefix/Torch/TorchConfig.cmake does not exist; letting CMakeLists.txt look for libtorch" | tee -a "$summary"
fi
build() {
  node node_modules/cmake-js/bin/cmake-js compile --out build --parallel "$(nproc)" &&
    node node_modules/typescript/bin/tsc -p tsconfig.json
}
step "build (Torch_DIR=${Torch_DIR:-not set})" build.log build || { echo "run.sh: the build failed; see $out/build.log"; cat "$summary"; exit 1; }

doctor() {
  node dist/cli.js doctor
  local rc=$?
  if [ "$cuda" = 1 ]; then node -e "import('./dist/index.js').then((m) => { if (!m.cudaAvailable()) { console.error('CUDA is not available to the addon'); process.exit(1); } })" || return 1; fi
  return $rc
}
step "doctor" doctor.txt doctor || { [ "$cuda" = 1 ] && { echo "run.sh: CUDA is not usable (see doctor.txt); --no-cuda checks the rest on CPU"; cat "$summary"; exit 1; }; }

cuda_tests() {
  BTM_TEST_CUDA=1 npx vitest run --reporter=default --reporter=json --outputFile.json="$out/cuda-tests.json" test/native/cuda.test.ts
}
[ "$cuda" = 1 ] && wanted cuda-tests && step "cuda tests (test/native/cuda.test.ts, BTM_TEST_CUDA=1)" cuda-tests.log cuda_tests

nccl_check() {
  BTM_NCCL=1 node node_modules/cmake-js/bin/cmake-js compile --out build-nccl --parallel "$(nproc)" || return 1
  BTM_NODE_ADDON="$PWD/build-nccl/Release/btm_node.node" node scripts/gpu/nccl-check.mjs
}
[ "$nccl" = 1 ] && step "nccl (BTM_NCCL=1 build, scripts/gpu/nccl-check.mjs)" nccl.log nccl_check

bench() {
  local args=(--no-tfjs)
  [ "$quick" = 1 ] && args+=(--quick)
  # BENCH_ARGS: more bench flags, e.g. BENCH_ARGS="--only btm-batched" for one section
  [ -n "${BENCH_ARGS:-}" ] && read -r -a extra <<<"$BENCH_ARGS" && args+=("${extra[@]}")
  local dev=()
  [ "$cuda" = 1 ] && dev=(--device cuda)
  rm -rf bench/results
  npm run bench -- "${dev[@]}" "${args[@]}"
  local rc=$?
  if [ "$rc" != 0 ] && [ "$cuda" = 1 ] && grep -q -e "Unknown option '--device'" -e ERR_PARSE_ARGS_UNKNOWN_OPTION "$out/bench.log" 2>/dev/null; then
    echo "NOTE: this bench has no --device flag; ran it without (its CUDA rows, if any, are its own choice)"
    echo "bench: NOTE: no --device flag in this bench; ran without it" >>"$summary"
    npm run bench -- "${args[@]}"; rc=$?
  fi
  cp bench/results/*.json "$out/" 2>/dev/null || true
  return $rc
}
wanted bench && step "bench" bench.log bench

main_job() {
  local dev=cpu
  [ "$cuda" = 1 ] && dev=cuda
  local extra=()
  [ "$quick" = 1 ] && extra=(--pretrain.epochs 1 --btm.epochs 1 --posttrain.epochs 1)
  [ -d "$work/data/fashion-mnist" ] && extra+=(--data.dir "$work/data/fashion-mnist")
  local t0=$(date +%s) limit=()
  [ "$main_timeout" -gt 0 ] && limit=(timeout "$main_timeout")
  "${limit[@]}" node dist/cli.js run --model.device "$dev" --runDir "$out/runs" --name "btm-$dev" "${extra[@]}"
  local rc=$?
  [ "$rc" = 124 ] && echo "main job: stopped by --main-timeout $main_timeout"
  echo "main job wall time: $(( $(date +%s) - t0 )) s on $dev"
  return $rc
}
wanted main && step "main job (btm, --model.device $([ "$cuda" = 1 ] && echo cuda || echo cpu))" main.log main_job

run_tests() {
  local cudaenv="" limit=()
  [ "$cuda" = 1 ] && cudaenv="BTM_TEST_CUDA=1"
  [ "$suite_timeout" -gt 0 ] && limit=(timeout "$suite_timeout")
  # shellcheck disable=SC2086
  "${limit[@]}" env $cudaenv npx vitest run --reporter=default --reporter=json --outputFile.json="$out/tests.json" $tests
  local rc=$?
  [ "$rc" = 124 ] && echo "tests: stopped by --suite-timeout $suite_timeout"
  node .ci/test-summary.mjs "$out/tests.json" --leg "$([ "$cuda" = 1 ] && echo cuda || echo cpu)" || rc=1
  return $rc
}
wanted tests && step "tests$([ "$cuda" = 1 ] && echo ' (BTM_TEST_CUDA=1)')" tests.log run_tests

echo "================ summary ($out) ================"
cat "$summary"
[ "$cuda" = 1 ] || echo "(--no-cuda: CPU only; these are not GPU results)"
exit "$failed"
