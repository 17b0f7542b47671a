// The default intra-op thread count adapts to other processes' load (native/runtime/threads.cc): a
// process that trains beside CPU hogs drops below the core count; one with BTM_NUM_THREADS keeps it.
// (vitest.config.ts fixes BTM_NUM_THREADS for the other tests; these children unset it.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const cores = availableParallelism();

// trains a small model for `ms` (or until its count drops below the cores) and prints the thread
// counts it ran with and whether they adapt
const child = (ms: number) => `
const { Dataset, Model, getNumThreads, threadsAdaptive, gridTask } = await import(${JSON.stringify(DIST)});
const d = new Dataset(gridTask({ n: 64, numClasses: 4, size: 16 }));
const m = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1 });
const order = Int32Array.from({ length: 64 }, (_, i) => i);
const seen = new Set(); const t = performance.now();
while (performance.now() - t < ${ms} && !(getNumThreads() < ${cores})) { await m.trainEpoch(d, order, { lr: 0.01, batchSize: 16 }); seen.add(getNumThreads()); }
console.log(JSON.stringify({ adaptive: threadsAdaptive(), seen: [...seen] }));`;

function run(env: NodeJS.ProcessEnv, ms: number) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child(ms)], { encoding: 'utf8', env, timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { adaptive: boolean; seen: number[] };
}

const hogs: ChildProcess[] = [];
afterEach(() => {
  for (const h of hogs.splice(0)) h.kill('SIGKILL');
});

describe('adaptive thread count', () => {
  const base = { ...process.env };
  delete base.BTM_NUM_THREADS;

  it.runIf(cores >= 2 && process.platform === 'linux')('drops below the core count beside processes that keep every core busy', async () => {
    for (let i = 0; i < cores; i++) hogs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 300));
    const r = run(base, 10_000);
    expect(r.adaptive).toBe(true);
    expect(Math.min(...r.seen)).toBeLessThan(cores);
  });

  it('BTM_NUM_THREADS fixes the count, busy neighbours or not; BTM_ADAPTIVE_THREADS=0 keeps every core', async () => {
    if (cores >= 2) for (let i = 0; i < cores; i++) hogs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    const fixed = run({ ...base, BTM_NUM_THREADS: String(cores) }, 1500);
    expect(fixed).toEqual({ adaptive: false, seen: [cores] });
    const off = run({ ...base, BTM_ADAPTIVE_THREADS: '0' }, 1500);
    expect(off).toEqual({ adaptive: false, seen: [cores] });
  });
});
