#!/usr/bin/env node
// `npm run prebuildify`: builds the addon (cmake-js, Node-API: one file serves every supported Node),
// strips it into prebuilds/<platform>-<arch>/btm-node.napi.node and writes beside it
// btm-node.libtorch.json, the record of the libtorch it was built against. The loader checks that
// record against the libtorch found at run time and refuses a mismatch with both versions named.
// Run after `npm run build:ts` (it uses dist/); `npm pack` then ships prebuilds/.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const { writeFileAtomicSync } = await import(pathToFileURL(path.join(root, 'dist/atomic-file.js')).href);
const { RECORD_NAME } = await import(pathToFileURL(path.join(root, 'dist/libtorch.js')).href);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
execFileSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--parallel', String(Math.min(availableParallelism(), 8))], {
  cwd: root,
  stdio: 'inherit',
});
const built = path.join(root, 'build/Release/btm_node.node');

// What it was built against: ask the addon itself, in a child (dlopen of the fresh build).
const probe = `import(${JSON.stringify(pathToFileURL(path.join(root, 'dist/native.js')).href)}).then(async (m) => {
  const a = m.native(); const { loadedLibtorch } = await import(${JSON.stringify(pathToFileURL(path.join(root, 'dist/libtorch.js')).href)});
  console.log(JSON.stringify({ info: a.buildInfo(), lib: loadedLibtorch() ?? null }));
})`;
const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, BTM_NODE_ADDON: built } });
if (r.status !== 0) throw new Error(`the fresh build ${built} does not load:\n${r.stderr}`);
const { info, lib } = JSON.parse(r.stdout.trim().split('\n').pop());

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const osRelease = (() => {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
})();
const record = {
  torchVersion: info.torchVersion,
  torchOrigin: info.torchOrigin,
  torchLibDir: lib ? path.dirname(lib.file) : null,
  napiVersion: info.napiVersion ?? pkg.binary.napi_versions[0],
  cudaVersion: info.cudaVersion ?? null,
  platform: process.platform,
  arch: process.arch,
  builtOn: osRelease ?? `${process.platform}-${process.arch}`,
  builtAt: new Date().toISOString(),
};

const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const out = path.join(dir, 'btm-node.napi.node');
const tmp = `${out}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
if (process.platform === 'linux' || process.platform === 'darwin') {
  const s = spawnSync('strip', process.platform === 'darwin' ? ['-Sx', tmp] : ['--strip-unneeded', tmp], { stdio: 'inherit' });
  if (s.status !== 0) console.warn(`prebuild: strip failed (${s.status ?? s.error?.message}); shipping the unstripped file`);
}
fs.renameSync(tmp, out);
writeFileAtomicSync(path.join(dir, RECORD_NAME), `${JSON.stringify(record, null, 2)}\n`);
console.log(`prebuild: ${path.relative(root, out)} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB) for libtorch ${record.torchVersion} (${record.torchOrigin})`);
