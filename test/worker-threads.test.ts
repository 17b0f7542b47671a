/**
 * Two worker_threads each load btm-node (and so the native addon) and run predict at the same time.
 * Runs in a child process so that a native crash fails this test instead of the test runner.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { saveCheckpoint } from '../src/checkpoint.js';
import { loadModel } from '../src/classifier.js';
import { gridTask } from '../src/data/synthetic.js';
import { Model } from '../src/model.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url)); // compiled by test/global-setup.ts
const SCRIPT = fileURLToPath(new URL('./helpers/worker-predict.mjs', import.meta.url));

let dir: string;
let ckpt: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-workers-'));
  ckpt = path.join(dir, 'm.safetensors');
  using model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 11 });
  await saveCheckpoint(ckpt, model, { arch: 'resnet8', numClasses: 4, inChannels: 1, imageSize: 16 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('predict runs in two worker_threads at once, each with the main thread\'s results', async () => {
  using c = await loadModel(ckpt);
  const expected = await c.predict(gridTask({ n: 16, size: 16, channels: 1, numClasses: 4, seed: 7 }).images, { logits: true });
  const r = spawnSync(process.execPath, [SCRIPT, DIST, ckpt], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, BTM_NUM_THREADS: '1' } });
  const how = `exit ${r.status}, signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  expect(r.status, how).toBe(0);
  const { workers } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { workers: { preds: number[][]; logitsSum: number[] }[] };
  expect(workers).toHaveLength(2);
  const sum = expected.logits!.reduce((a, b) => a + b, 0);
  for (const w of workers) {
    for (const preds of w.preds) expect(preds).toEqual(Array.from(expected.preds));
    for (const s of w.logitsSum) expect(s).toBeCloseTo(sum, 3);
  }
});
