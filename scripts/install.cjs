#!/usr/bin/env node
// npm install hook: use a matching prebuild (prebuilds/) or an existing source build (build/Release);
// otherwise say how to build from source. It never fails the install: the loader repeats the advice
// with the exact error when the addon is first required.
'use strict';
const path = require('path');
const root = path.join(__dirname, '..');
try {
  require('node-gyp-build').path(root);
  process.exit(0);
} catch {
  // fall through: nothing matches this platform / ABI yet
}
const msg = [
  'btm-node: no prebuilt native addon matches this machine (' + process.platform + '-' + process.arch + ').',
  'Build it from source (needs cmake >= 3.18, a C++17 compiler and libtorch):',
  '  libtorch: apt-get install --no-install-recommends libtorch-dev   (Debian/Ubuntu, CPU)',
  '            or a PyTorch install (found via python3 -c "import torch")',
  '            or LIBTORCH=/path/to/libtorch',
  '  then:     npm run build:native   (in ' + root + ')',
];
console.warn(msg.join('\n'));
