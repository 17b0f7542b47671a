#!/usr/bin/env node
// npm install hook. Leaves the package with a working native addon or fails the install loudly:
//   1. an existing build (build/Release) or a shipped prebuild (prebuilds/<platform>-<arch>) that
//      loads here, checked in a child process by the package's own loader (dist/native.js: the
//      prebuild's libtorch record against the libtorch found here, symbols bound at load time);
//   2. otherwise a source build with the package's own cmake-js (a dependency) against this
//      machine's libtorch (LIBTORCH, Torch_DIR, PyTorch for python3, or the system's libtorch-dev);
//   3. when the build cannot run, the install fails with what is missing and the one command that
//      installs it and rebuilds. BTM_NODE_SKIP_BUILD=1 skips all of this (the loader explains later).
// In a development checkout (src/ present) it does nothing: `npm run build` builds the addon there.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { pathToFileURL } = require('url');

const root = path.join(__dirname, '..');
const say = (line) => process.stderr.write(`btm-node: ${line}\n`);

if (process.env.BTM_NODE_SKIP_BUILD && process.env.BTM_NODE_SKIP_BUILD !== '0') {
  say('BTM_NODE_SKIP_BUILD is set: not checking or building the native addon.');
  process.exit(0);
}
if (fs.existsSync(path.join(root, 'src')) && fs.existsSync(path.join(root, 'tsconfig.json'))) {
  process.exit(0); // a development checkout: `npm run build`
}

/** Loads the addon in a child through the package's loader; returns '' when it loads, else the reason. */
function probe() {
  const loader = pathToFileURL(path.join(root, 'dist', 'native.js')).href;
  const code = `import(${JSON.stringify(loader)}).then((m) => { m.native(); console.log(m.addonLocation().file); })` +
    `.catch((e) => { console.error(e.message); process.exit(1); });`;
  const env = { ...process.env };
  delete env.BTM_NODE_ADDON;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env, timeout: 120000 });
  if (r.status === 0) return { ok: true, file: r.stdout.trim() };
  return { ok: false, reason: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

async function main() {
  const lib = await import(pathToFileURL(path.join(root, 'dist', 'libtorch.js')).href);
  // npm removes a package whose install script fails, so a fix ends by installing it again, from
  // where it was installed (INIT_CWD) and from the same source (a tarball, or the registry).
  const version = require(path.join(root, 'package.json')).version;
  const resolved = process.env.npm_package_resolved || '';
  const spec = resolved.startsWith('file:') ? resolved.slice(5) : `btm-node@${version}`;
  const project = process.env.INIT_CWD || lib.dependentProject(root) || process.cwd();
  const retry = `cd ${lib.shellQuote(project)} && npm install ${lib.shellQuote(spec)}`;
  const first = probe();
  if (first.ok) {
    say(`native addon ready: ${first.file}`);
    return 0;
  }
  const why = first.reason.split('\n')[0];
  if (!/no prebuilt addon matches this machine/.test(why)) say(`the shipped addon cannot be used here: ${why.replace(/^btm-node: /, '')}`);
  say('building the native addon from source against this machine\'s libtorch ...');

  const missing = lib.buildPrerequisites().filter((p) => !p.ok);
  if (missing.length > 0) {
    const fix = lib.fixCommand(missing, retry);
    const lines = ['cannot build the native addon from source; missing:'];
    for (const p of missing) lines.push(`  ${p.name}: ${p.detail}`);
    if (fix) lines.push('Fix (installs what is missing, then builds):', `  ${fix}`);
    else lines.push(`Install what is missing (libtorch: PyTorch for python3, or LIBTORCH=/path/to/libtorch), then: ${retry}`);
    lines.push('To install without the addon for now: BTM_NODE_SKIP_BUILD=1 npm install (the first native call then explains).');
    say(lines.join('\n'));
    return 1;
  }

  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const jobs = String(Math.max(1, Math.min(os.availableParallelism ? os.availableParallelism() : os.cpus().length, 8)));
  const start = Date.now();
  const build = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', path.join(root, 'build'), '--parallel', jobs], {
    cwd: root,
    stdio: 'inherit',
  });
  if (build.status !== 0) {
    say(`the source build failed (cmake-js exit ${build.status ?? build.signal}); its output is above.\n` +
      `Retry after fixing it with: ${retry}`);
    return 1;
  }
  const after = probe();
  if (!after.ok) {
    say(`the source build finished but the addon does not load:\n${after.reason}`);
    return 1;
  }
  say(`built from source in ${Math.round((Date.now() - start) / 1000)} s: ${after.file}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`install script failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
