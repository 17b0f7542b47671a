// Models report their native memory to V8 (as datasets do), so models dropped without dispose() are
// collected under memory pressure instead of piling up outside the GC's view. Also: buildInfo reports
// what the addon was built against, for `btm doctor`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInfo, cudaAvailable, deviceCount } from '../../src/index.js';
import { PACKAGE_ROOT } from '../../src/native.js';

const dir = mkdtempSync(join(tmpdir(), 'btm-memory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('native memory seen by the GC', () => {
  it('500 resnet20 models dropped without dispose() and no explicit gc do not pile up', () => {
    // Each resnet20 holds ~1.1 MB of weights: unseen by V8, 500 of them grew RSS by ~580 MB.
    const file = join(dir, 'drop.cjs');
    writeFileSync(
      file,
      `const addon = require(${JSON.stringify(join(PACKAGE_ROOT, 'build/Release/btm_node.node'))});
addon.setNumThreads(1);
(async () => {
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 500; i++) {
    new addon.Model({ arch: 'resnet20', numClasses: 10, seed: i });
    if (i % 10 === 9) await new Promise((r) => setImmediate(r)); // a service yields to its event loop
  }
  await new Promise((r) => setTimeout(r, 100));
  console.log(JSON.stringify({ growthMB: (process.memoryUsage().rss - rss0) / 2 ** 20 }));
})();
`,
    );
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const { growthMB } = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`RSS growth after dropping 500 resnet20 models: ${growthMB.toFixed(0)} MB`);
    expect(growthMB).toBeLessThan(200);
  });
});

describe('buildInfo', () => {
  it('names the libtorch, Node-API version, CUDA / cuDNN versions (null without CUDA) and devices', () => {
    const info = buildInfo();
    expect(info.torchVersion).toMatch(/^\d+\.\d+/);
    expect(typeof info.torchOrigin).toBe('string');
    expect(info.hardwareConcurrency).toBeGreaterThan(0);
    expect(info.parallelInfo).toMatch(/ATen/);
    expect(info.napiVersion).toBe(8);
    expect(info.cudaAvailable).toBe(cudaAvailable());
    expect(info.deviceCount).toBe(deviceCount());
    for (const v of [info.cudaVersion, info.cudnnVersion]) {
      expect(v === null || /^\d+\.\d+(\.\d+)?$/.test(v)).toBe(true);
    }
    if (info.cudaAvailable) expect(info.cudaVersion).not.toBeNull();
    console.log(JSON.stringify({ ...info, parallelInfo: info.parallelInfo.split('\n').slice(0, 3) }));
  });
});
