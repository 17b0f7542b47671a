#!/usr/bin/env bash
# Packs what a CUDA box without Node and without network needs to check this project (run.sh there):
#   node/      this machine's `node` binary (stripped) and npm (glibc >= 2.28, x86-64 Linux);
#   btm-node/  the repo's sources (tracked and new files; no build, dist, runs) and its node_modules
#              (as installed here by npm ci, less TensorFlow.js, which only the CPU bench's peer uses,
#              TypeScript's language service, zod's TS sources and vite's CSS minifier binary, which
#              vite imports only for CSS);
#   data/      Fashion-MNIST (the IDX files of Debian's dataset-fashion-mnist, uncompressed) for the main job,
#              unless --no-data;
# all in one xz-compressed tar, checked to be under 64 MiB.
#   bash scripts/gpu/pack.sh [--no-data] [--no-sharp] [OUT.tar.xz]      (default: btm-gpu-pack.tar.xz)
# --no-sharp leaves out sharp's binaries and libvips (@img/sharp-*, ~6 MB packed; its JS and types stay
# for tsc), which only list-file datasets use: room for a pack that must travel beside a checkout under
# one 64 MiB limit (list-file tests then fail there, saying sharp cannot load).
# Run after `npm ci` (node_modules must be the lockfile's). Then on the GPU box:
#   bash run.sh btm-gpu-pack.tar.xz      (run.sh is also inside the pack, in btm-node/scripts/gpu/)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
data=1
sharp=1
out=btm-gpu-pack.tar.xz
for a in "$@"; do
  case "$a" in
    --no-data) data=0 ;;
    --no-sharp) sharp=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "pack.sh: unknown option $a" >&2; exit 2 ;;
    *) out=$a ;;
  esac
done
limit=$((64 * 1024 * 1024))
[ -d node_modules/vitest ] && [ -d node_modules/cmake-js ] || { echo "pack.sh: node_modules is incomplete: run npm ci first" >&2; exit 1; }
node_bin=$(command -v node) || { echo "pack.sh: no node on PATH" >&2; exit 1; }
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "pack.sh: cannot find npm's folder (looked at $npm_dir)" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/btm-gpu-pack.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/node/bin" "$stage/node/lib/node_modules" "$stage/btm-node"
cp "$node_bin" "$stage/node/bin/node"
# without its debug info and static symbol table (-13 MB); the dynamic symbols addons link to stay
strip "$stage/node/bin/node" 2>/dev/null || echo "pack.sh: note: strip failed; packing node unstripped"
"$stage/node/bin/node" -e 0 || { echo "pack.sh: the stripped node does not run" >&2; exit 1; }
# npm without its docs and man pages; bin/npm and bin/npx as the usual links
(cd "$(dirname "$npm_dir")" && tar --exclude='npm/docs' --exclude='npm/man' -cf - "$(basename "$npm_dir")") | tar -C "$stage/node/lib/node_modules" -xf -
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/node/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/node/bin/npx"

git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$stage/btm-node" -xf -
tar --exclude='node_modules/@tensorflow' --exclude='node_modules/core-js' --exclude='node_modules/.cache' \
  --exclude='node_modules/typescript/lib/??' --exclude='node_modules/typescript/lib/zh-c?' --exclude='node_modules/typescript/lib/pt-br' \
  --exclude='node_modules/typescript/lib/typescript.js' --exclude='node_modules/typescript/lib/typescript.d.ts' \
  --exclude='node_modules/typescript/lib/_tsserver.js' --exclude='node_modules/typescript/lib/_typingsInstaller.js' \
  --exclude='node_modules/typescript/lib/tsserverlibrary.*' \
  --exclude='node_modules/lightningcss-linux-*' --exclude='node_modules/zod/src' \
  $([ "$sharp" = 0 ] && echo "--exclude=node_modules/@img/sharp-*") \
  -cf - node_modules | tar -C "$stage/btm-node" -xf -

# TensorFlow.js's type declarations only: `npm run bench` compiles bench/ (whose tfjs peer is imported
# only without --no-tfjs, which run.sh passes)
(cd node_modules && find @tensorflow \( -name '*.d.ts' -o -name package.json \) -print0 | tar --null -T - -cf -) |
  tar -C "$stage/btm-node/node_modules" -xf -

if [ "$data" = 1 ]; then
  src=/usr/share/datasets/fashion-mnist
  [ -f "$src/train-images-idx3-ubyte.gz" ] || { echo "pack.sh: $src is missing (apt-get install dataset-fashion-mnist, or --no-data)" >&2; exit 1; }
  mkdir -p "$stage/data/fashion-mnist"
  # uncompressed: xz packs the raw IDX files smaller than their gzip copies (the reader takes both)
  for f in "$src"/*.gz; do gzip -dc "$f" >"$stage/data/fashion-mnist/$(basename "$f" .gz)"; done
fi
cat >"$stage/PACK-INFO" <<EOF
packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo '+changes')
node $("$node_bin" --version), npm $(node "$npm_dir/bin/npm-cli.js" --version), data: $([ "$data" = 1 ] && echo fashion-mnist || echo none), sharp: $([ "$sharp" = 1 ] && echo yes || echo no)
EOF

echo "staged: node $(du -sm "$stage/node" | cut -f1) MB, btm-node $(du -sm "$stage/btm-node" | cut -f1) MB (node_modules $(du -sm "$stage/btm-node/node_modules" | cut -f1) MB), data $(du -sm "$stage/data" 2>/dev/null | cut -f1 || echo 0) MB"
tmp_out="$out.$$.tmp"
tar -C "$stage" -cf - . | xz -T0 -9 >"$tmp_out"
size=$(stat -c %s "$tmp_out")
if [ "$size" -gt "$limit" ]; then
  rm -f "$tmp_out"
  echo "pack.sh: the pack is $((size / 1024 / 1024)) MiB, over the 64 MiB limit (try --no-data)" >&2; exit 1
fi
mv "$tmp_out" "$out"
echo "pack: $out $(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }') (limit 64 MiB)"
