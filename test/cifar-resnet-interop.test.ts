/**
 * The default run's model (the CIFAR resnet20, which torchvision lacks) in PyTorch: the module in
 * test/interop/cifar_resnet.py (the README's code) loads a btm-node checkpoint strictly and gives
 * the same logits; the same checkpoint cast to float16 / bfloat16 by torch loads back through
 * loadModel; checkpointSummary shows what `btm info` needs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointSummary, saveCheckpoint, type ModelMeta } from '../src/checkpoint.js';
import { loadModel } from '../src/classifier.js';
import { noiseTask } from '../src/data/synthetic.js';
import { Dataset } from '../src/dataset.js';
import { Model } from '../src/model.js';
import { readSafetensorsSync, writeSafetensorsSync } from '../src/safetensors.js';
import { PYTHON } from './helpers/python.js';

const SCRIPT = fileURLToPath(new URL('./interop/cifar_resnet.py', import.meta.url));
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const META: ModelMeta = {
  arch: 'resnet20', numClasses: 10, inChannels: 3, imageSize: 32,
  normalize: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
};

let dir: string;
let ckpt: string;
const images = noiseTask({ n: 6, size: 32, channels: 3, numClasses: 10, seed: 9 }).images;
let logits: Float32Array;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-cifar-resnet-'));
  ckpt = path.join(dir, 'resnet20.safetensors');
  using model = new Model({ arch: 'resnet20', numClasses: 10, inChannels: 3, seed: 5 });
  // Non-trivial BatchNorm statistics, as after training.
  using data = Dataset.fromImageSet(noiseTask({ n: 64, size: 32, channels: 3, numClasses: 10, seed: 2 }));
  await model.evaluate(data, { bnMode: 'train', normalize: META.normalize });
  await saveCheckpoint(ckpt, model, META, { stage: 'posttrain', epoch: '3' });
  using c = await loadModel(ckpt);
  logits = (await c.predict(images, { logits: true })).logits!;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  const scale = Math.max(...Array.from(b, Math.abs));
  return Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]))) / scale;
}

describe.skipIf(!hasTorch)('CIFAR resnet20 in PyTorch', () => {
  it('the README module loads a btm-node checkpoint strictly and gives the same logits', () => {
    const input = path.join(dir, 'input.safetensors');
    writeSafetensorsSync(input, [{ name: 'images', shape: [6, 3, 32, 32], dtype: 'float32', data: Float32Array.from(images) }]);
    const out = path.join(dir, 'torch-logits.safetensors');
    execFileSync(PYTHON, [SCRIPT, 'logits', ckpt, input, out], { encoding: 'utf8', timeout: 120_000 });
    const torchLogits = readSafetensorsSync(out).dict[0].data as Float32Array;
    expect(torchLogits).toHaveLength(60);
    expect(maxRelDiff(torchLogits, logits)).toBeLessThan(1e-4);
  });

  it.each([['float16', 'F16', 5e-3], ['bfloat16', 'BF16', 5e-2]] as const)('a %s copy written by torch loads with loadModel', async (dtype, stored, tol) => {
    const half = path.join(dir, `resnet20-${dtype}.safetensors`);
    execFileSync(PYTHON, [SCRIPT, 'half', ckpt, half, dtype], { encoding: 'utf8', timeout: 120_000 });
    using c = await loadModel(half);
    const got = (await c.predict(images, { logits: true })).logits!;
    expect(maxRelDiff(got, logits)).toBeLessThan(tol);
    const info = await checkpointSummary(half);
    expect(info.dtypes).toEqual({ [stored]: 97, I64: 19 });
  });
});

describe('checkpointSummary (btm info)', () => {
  it('shows architecture, classes, channels, image size, normalisation and stage', async () => {
    const info = await checkpointSummary(ckpt);
    expect(info).toMatchObject({
      file: ckpt, format: 'btm-node/1', arch: 'resnet20', numClasses: 10, inChannels: 3, imageSize: 32,
      normalize: META.normalize, stage: 'posttrain', metadata: { epoch: '3' }, dtypes: { F32: 97, I64: 19 }, optimizerState: false,
    });
    // convs 267696 + fc 650 + BatchNorm weight and bias 1376 (running statistics excluded).
    expect(info.parameters).toBe(269722);
    expect(info.note).toBeUndefined();
  });

  it('a plain safetensors file: tensor figures and a note instead of the model fields', async () => {
    const plain = path.join(dir, 'plain.safetensors');
    writeSafetensorsSync(plain, [{ name: 'w', shape: [2], dtype: 'float32', data: Float32Array.of(1, 2) }]);
    const info = await checkpointSummary(plain);
    expect(info).toMatchObject({ tensors: 1, parameters: 2, dtypes: { F32: 1 } });
    expect(info.arch).toBeUndefined();
    expect(info.note).toMatch(/no btm-node model metadata/);
  });

  it('a checkpoint whose model metadata is wrong names the file and field', async () => {
    const bad = path.join(dir, 'bad.safetensors');
    writeSafetensorsSync(bad, readSafetensorsSync(ckpt).dict, { model: JSON.stringify({ ...META, imageSize: 0 }) });
    await expect(checkpointSummary(bad)).rejects.toThrow(`${bad}: __metadata__.model.imageSize must be an integer >= 1, got 0`);
    await expect(loadModel(bad)).rejects.toThrow(`${bad}: __metadata__.model.imageSize must be an integer >= 1, got 0`);
  });
});
