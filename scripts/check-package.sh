#!/usr/bin/env bash
# The package as a service gets it: `npm pack`, install the tarball into a fresh folder outside the
# repo, import btm-node, write a checkpoint of a fresh Model with the library's checkpoint writer,
# loadModel it, predict, check the predictions. Also checks what the tarball ships and that sharp (an
# optional peer) is not pulled in. Run from the repo after `npm run build` (dist/ must exist);
# with prebuilds/ present (npm run prebuildify) the tarball ships them and the install uses one that
# loads here, else it builds from source at install time. Prints the install's wall time and size.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
expect_missing=0
case "${1:-}" in
  --expect-missing) expect_missing=1 ;;  # see the install step
  "") ;;
  *) echo "usage: $0 [--expect-missing]" >&2; exit 2 ;;
esac
[ -f dist/index.js ] || { echo "check-package: dist/ is missing: run npm run build first" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/btm-check-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "::: npm pack"
npm pack --silent --pack-destination "$tmp" >"$tmp/pack.out"
tgz="$tmp/$(tail -n1 "$tmp/pack.out")"
[ -f "$tgz" ] || { echo "check-package: npm pack made no tarball (said: $(cat "$tmp/pack.out"))" >&2; exit 1; }
tar -tzf "$tgz" | sed 's|^package/||' | sort >"$tmp/files"
echo "tarball $(basename "$tgz"): $(wc -l <"$tmp/files") files, $(du -k "$tgz" | cut -f1) KiB"
# every native source of the checkout (the source build at install needs them all), whatever the layout
for f in package.json dist/index.js dist/index.d.ts dist/cli.js dist/native.js dist/libtorch.js dist/doctor.js \
  CMakeLists.txt scripts/install.cjs scripts/pt_to_safetensors.py $(find native -type f \( -name '*.cc' -o -name '*.h' \) | sort); do
  grep -qx "$f" "$tmp/files" || { echo "check-package: the tarball lacks $f" >&2; exit 1; }
done
if grep -E '^(src|test|bench|cmake|\.ci)/|^scripts/(gpu|check-package)' "$tmp/files"; then
  echo "check-package: the tarball ships development files (above)" >&2; exit 1
fi
grep '^prebuilds/' "$tmp/files" || echo "(no prebuilds shipped: the install builds from source)"

echo "::: npm install the tarball into a fresh project"
app="$tmp/service"
mkdir "$app"
cat >"$app/package.json" <<'EOF'
{ "name": "a-service", "version": "1.0.0", "private": true, "type": "module" }
EOF
start=$(date +%s)
# --foreground-scripts: show btm-node's install script (prebuild check or source build) in the log
if [ "$expect_missing" = 1 ]; then
  # a build tool is missing on purpose: the install must fail naming it and the one command that
  # fixes it; run that command as printed and go on with what it installed
  if (cd "$app" && npm install --no-audit --no-fund --foreground-scripts "$tgz") >"$tmp/install1.log" 2>&1; then
    cat "$tmp/install1.log"; echo "check-package: the install succeeded though a build tool is missing" >&2; exit 1
  fi
  cat "$tmp/install1.log"
  fix=$(grep -A1 'Fix (installs what is missing, then builds):' "$tmp/install1.log" | tail -n1 | sed -E 's/^(npm (error|ERR!))? +//')
  case "$fix" in
    *"apt-get install"*"npm install"*) ;;
    *) echo "check-package: the failed install printed no fix command (got '$fix')" >&2; exit 1 ;;
  esac
  echo "::: running the fix the install printed: $fix"
  bash -c "$fix"
else
  (cd "$app" && npm install --no-audit --no-fund --foreground-scripts "$tgz")
fi
echo "install took $(( $(date +%s) - start )) s; node_modules: $(du -sm "$app/node_modules" | cut -f1) MB"
[ ! -e "$app/node_modules/sharp" ] || { echo "check-package: sharp was installed (it should be an optional peer)" >&2; exit 1; }

# npm >= 11 (allowScripts): the documented way for a service to allow btm-node's install script
# for good is `npm install-scripts approve btm-node`; check that a strict install then builds/uses it.
if (cd "$app" && npm install-scripts ls >/dev/null 2>&1); then
  echo "::: npm install-scripts approve btm-node, then a strict reinstall"
  (cd "$app" && npm install-scripts approve btm-node && rm -rf node_modules &&
    npm install --no-audit --no-fund --foreground-scripts --strict-allow-scripts)
fi

echo "::: import, checkpoint, loadModel, predict"
cat >"$app/check.mjs" <<'EOF'
import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as btm from 'btm-node';

const pkg = createRequire(import.meta.url)('btm-node/package.json');
assert.equal(pkg.name, 'btm-node');
const report = btm.doctor();
process.stdout.write(btm.formatDoctor(report));
assert.equal(report.loaded, true, report.loadError);
assert.match(report.addon.file, /node_modules[\\/]btm-node[\\/](build[\\/]Release|prebuilds)[\\/]/);

// a fresh model's initial weights, through the library's checkpoint writer
const meta = { arch: 'resnet8', numClasses: 7, inChannels: 1, imageSize: 28 };
const model = new btm.Model({ arch: meta.arch, numClasses: meta.numClasses, inChannels: 1, imageSize: 28, seed: 3 });
const file = join(mkdtempSync(join(tmpdir(), 'svc-')), 'init.safetensors');
await btm.saveCheckpoint(file, model, meta);
model.dispose();

const clf = await btm.loadModel(file);
const n = 5;
const images = new Uint8Array(n * 28 * 28).map((_, i) => (i * 37) % 256);
const { preds } = await clf.predict(images);
assert.equal(preds.length, n);
for (const p of preds) assert.ok(Number.isInteger(p) && p >= 0 && p < meta.numClasses, `prediction ${p} out of range`);
console.log(`ok: ${report.addon.kind} ${report.addon.file}, libtorch ${report.build?.torchVersion}, predictions [${[...preds]}]`);
EOF
(cd "$app" && node check.mjs)
# and through require() (Node >= 20.19 / 22.12 load this ES module package synchronously)
(cd "$app" && node -e "const b = require('btm-node'); if (typeof b.loadModel !== 'function') process.exit(1); console.log('require(): ok')")
echo "check-package: ok"
