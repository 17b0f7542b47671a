/**
 * MORE's merged checkpoint in torchvision (Debian's /usr/bin/python3 with torch + torchvision): a
 * resnet18 trained a few steps with low-rank factors on every layer (B != 0) exports W_g + B A in the
 * plain layout; torchvision.models.resnet18 loads it strictly and its eval-mode logits equal
 * btm-node's full-path logits. Skipped, with the reason in the suite name, without torchvision.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Dataset } from '../../src/dataset.js';
import { Model } from '../../src/model.js';
import { moreClassWeights } from '../../src/more.js';
import { readSafetensors, writeSafetensors } from '../../src/safetensors.js';
import { stateDictToMap } from '../../src/state-dict.js';
import { randomTask, range } from '../helpers/synthetic.js';
import { PYTHON, torchvisionUnavailable } from '../helpers/python.js';

const FORWARD = fileURLToPath(new URL('../interop/torchvision_forward.py', import.meta.url));

const skipReason = torchvisionUnavailable();

const N = 8, SIZE = 32, C = 5;
let dir: string | undefined;
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.skipIf(skipReason !== undefined)(`MORE checkpoint in torchvision${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('resnet18 with factors on every layer: merged state loads strictly; logits equal the full path', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-more-tv-'));
    const train = new Dataset(randomTask({ n: 16, numClasses: C, size: SIZE, channels: 3, seed: 71 }));
    const model = new Model({ arch: 'resnet18', numClasses: C, inChannels: 3, seed: 71 });
    model.setLowRank({ rank: 4 });
    expect(model.lowRank!.layers.length).toBe(21);  // conv1, 16 block convs, 3 downsample convs, fc
    const more = { coefficient: 1, classWeights: moreClassWeights([8, 4, 2, 1, 1]) };
    for (let e = 0; e < 2; e++) await model.trainEpoch(train, range(16), { lr: 0.05, batchSize: 8, more });
    // running statistics near the activations' so that eval-mode logits stay O(1)
    for (let i = 0; i < 10; i++) await model.evaluate(train, { batchSize: 16, bnMode: 'train' });

    const data = new Dataset(randomTask({ n: N, numClasses: C, size: SIZE, channels: 3, seed: 72 }));
    const full = (await model.evaluate(data, { logits: true, batchSize: N })).logits!;
    const general = (await model.evaluate(data, { logits: true, batchSize: N, path: 'general' })).logits!;
    expect(maxAbsDiff(full, general)).toBeGreaterThan(1e-3);  // B A matters

    const weights = path.join(dir, 'weights.safetensors'), input = path.join(dir, 'input.safetensors'), out = path.join(dir, 'out.safetensors');
    await writeSafetensors(weights, model.stateDict());
    // the same float32 input btm-node computes without normalisation: x / 255
    const raw = randomTask({ n: N, numClasses: C, size: SIZE, channels: 3, seed: 72 }).images;
    await writeSafetensors(input, [{ name: 'input', shape: [N, 3, SIZE, SIZE], dtype: 'float32', data: Float32Array.from(raw, (v) => Math.fround(v / 255)) }]);
    execFileSync(PYTHON, [FORWARD, '--arch', 'resnet18', '--num-classes', String(C), '--weights', weights, '--input', input, '--out', out], { timeout: 180_000, stdio: 'pipe' });
    const ref = stateDictToMap((await readSafetensors(out)).dict);
    const tv = ref.get('logits_eval')!.data as Float32Array;
    const d = maxAbsDiff(full, tv);
    console.log(`[MORE resnet18 -> torchvision] max |logit| ${Math.max(...Array.from(full, Math.abs)).toPrecision(3)}, max abs diff ${d.toExponential(3)}`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });
});
