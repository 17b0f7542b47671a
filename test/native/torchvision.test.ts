/**
 * Numerical interop with torchvision (Debian's /usr/bin/python3 with torch + torchvision):
 *  - btm-node weights -> safetensors -> torchvision: eval-mode logits, train-mode (batch statistics)
 *    logits, and the BatchNorm running stats / num_batches_tracked after that train-mode forward;
 *  - torchvision's own random init -> safetensors -> btm-node loadStateDict: the same comparisons.
 * Skipped, with the reason in the suite name, when torch / torchvision cannot be imported.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataset } from '../../src/dataset.js';
import { Model } from '../../src/model.js';
import { readSafetensors, writeSafetensors } from '../../src/safetensors.js';
import { stateDictToMap, type StateDict, type StateEntry } from '../../src/state-dict.js';
import { Rng } from '../../src/sampling/rng.js';
import type { DatasetSource } from '../../src/dataset.js';
import { PYTHON, torchvisionUnavailable } from '../helpers/python.js';

const INTEROP = fileURLToPath(new URL('../interop/', import.meta.url));
const FORWARD = path.join(INTEROP, 'torchvision_forward.py');
const PY_TIMEOUT_MS = 180_000;

const skipReason = torchvisionUnavailable();
if (skipReason) console.warn(`torchvision interop tests skipped: ${skipReason}`);

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

/** A seeded uniform [0, 1) stream (the project's Rng), so failures reproduce. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.nextFloat();
}

type Batch = DatasetSource;

function randomBatch(seed: number, n: number, channels: number, size: number, numClasses: number): Batch {
  const r = rng(seed);
  const images = new Uint8Array(n * channels * size * size);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(r() * 256);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(r() * numClasses);
  return { images, labels, n, channels, height: size, width: size };
}

/**
 * The float32 NCHW input btm-node computes from uint8 pixels: (x/255 - mean)/std, every step
 * rounded to float32 as libtorch does it (x.to(float).div_(255) .sub_(mean) .div_(std)). A double
 * result rounded once to float32 equals the correctly rounded float32 operation for + - * /.
 */
function normalizedInput(b: Batch, mean: number[], std: number[]): Float32Array {
  const out = new Float32Array(b.images.length);
  const plane = b.height * b.width;
  for (let i = 0; i < out.length; i++) {
    const c = Math.floor(i / plane) % b.channels;
    const x = Math.fround(b.images[i] / 255);
    out[i] = Math.fround(Math.fround(x - Math.fround(mean[c])) / Math.fround(std[c]));
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function bytesOf(data: StateEntry['data']): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function py(args: string[]): void {
  try {
    execFileSync(PYTHON, args, { timeout: PY_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    throw new Error(`${PYTHON} ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}${err.stdout ?? ''}`);
  }
}

const isBnStat = (name: string) => /\.(running_mean|running_var|num_batches_tracked)$/.test(name);

/**
 * btm-node's state after its train-mode forward against Python's `state.*`: BatchNorm running stats
 * within 1e-5, num_batches_tracked exactly, and every parameter bit-exact (neither side changes
 * them). Returns the max abs diff over the running stats and the problems found.
 */
function compareState(btm: StateDict, ref: Map<string, StateEntry>): { worst: number; problems: string[] } {
  let worst = 0;
  const problems: string[] = [];
  const refNames = [...ref.keys()].filter((k) => k.startsWith('state.')).map((k) => k.slice(6));
  const btmNames = btm.map((e) => e.name);
  if (btmNames.join('\n') !== refNames.join('\n')) problems.push(`names/order differ: [${btmNames}] vs [${refNames}]`);
  for (const e of btm) {
    const r = ref.get(`state.${e.name}`);
    if (!r) continue;
    if (r.shape.join(',') !== e.shape.join(',') || r.dtype !== e.dtype) {
      problems.push(`${e.name}: ${e.dtype}[${e.shape}] vs ${r.dtype}[${r.shape}]`);
    } else if (e.dtype === 'int64') {
      if (!bytesOf(e.data).equals(bytesOf(r.data))) problems.push(`${e.name}: ${e.data} vs ${r.data}`);
    } else if (isBnStat(e.name)) {
      const d = maxAbsDiff(e.data as Float32Array, r.data as Float32Array);
      if (!(d <= 1e-5)) problems.push(`${e.name}: max abs diff ${d}`);
      worst = Math.max(worst, d);
    } else if (!bytesOf(e.data).equals(bytesOf(r.data))) {
      problems.push(`${e.name}: parameter not bit-exact`);
    }
  }
  return { worst, problems };
}

const N = 8; // batch (BatchNorm train mode: one forward over all N images on both sides)
const SIZE = 32;
const NUM_CLASSES = 7;
const CONFIGS = [
  // CIFAR-like RGB and Fashion-MNIST-like grey (torchvision_forward.py swaps in a 1-channel conv1).
  { name: '3 channels', channels: 3, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  { name: '1 channel', channels: 1, mean: [0.286], std: [0.353] },
] as const;

let dir: string;
const cleanup: { dispose(): void; disposed: boolean }[] = [];
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-torchvision-'));
});
afterAll(() => {
  for (const x of cleanup) if (!x.disposed) x.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Write the batch's float32 input, run torchvision_forward.py on `weights`, read its outputs. */
async function torchvisionForward(tag: string, weights: string, channels: number, input: Float32Array) {
  const inputFile = path.join(dir, `${tag}-input.safetensors`);
  const outFile = path.join(dir, `${tag}-out.safetensors`);
  await writeSafetensors(inputFile, [{ name: 'input', shape: [N, channels, SIZE, SIZE], dtype: 'float32', data: input }]);
  py([FORWARD, '--arch', 'resnet18', '--num-classes', String(NUM_CLASSES), '--in-channels', String(channels),
    '--weights', weights, '--input', inputFile, '--out', outFile]);
  return stateDictToMap((await readSafetensors(outFile)).dict);
}

/**
 * btm-node's side of the comparison, in the order torchvision_forward.py does it: an eval-mode
 * forward, then a train-mode forward (updating BN running stats), then the state.
 */
async function compareWithTorchvision(label: string, model: Model, data: Dataset, cfg: (typeof CONFIGS)[number],
  ref: Map<string, StateEntry>) {
  const normalize = { mean: [...cfg.mean], std: [...cfg.std] };
  const logitsEval = ref.get('logits_eval')!;
  const logitsTrain = ref.get('logits_train')!;
  expect(logitsEval.shape).toEqual([N, NUM_CLASSES]);

  const ev = await model.evaluate(data, { logits: true, normalize, batchSize: N });
  const dEval = maxAbsDiff(ev.logits!, logitsEval.data as Float32Array);
  const tr = await model.evaluate(data, { logits: true, normalize, batchSize: N, bnMode: 'train' });
  const dTrain = maxAbsDiff(tr.logits!, logitsTrain.data as Float32Array);
  const { worst: dStats, problems } = compareState(model.stateDict(), ref);
  console.log(
    `[${label}] max |logit| eval ${maxAbs(ev.logits!).toPrecision(4)}, train ${maxAbs(tr.logits!).toPrecision(4)}; ` +
      `max abs diff vs torchvision: logits_eval ${dEval.toExponential(3)}, logits_train ${dTrain.toExponential(3)}, ` +
      `running stats ${dStats.toExponential(3)}`,
  );
  // The two forwards must really differ, or the BN-mode comparison would prove nothing.
  expect(maxAbsDiff(ev.logits!, tr.logits!)).toBeGreaterThan(1e-2);
  expect(dEval).toBeLessThanOrEqual(1e-4);
  expect(dTrain).toBeLessThanOrEqual(1e-4);
  expect(problems).toEqual([]);
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

describe.skipIf(skipReason !== undefined)(
  `torchvision resnet18 interop${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    for (const cfg of CONFIGS) {
      it(`btm-node weights in torchvision, ${cfg.name}: logits (eval, train-mode BN) and running stats`, async () => {
        const model = new Model({ arch: 'resnet18', numClasses: NUM_CLASSES, inChannels: cfg.channels, seed: 21 });
        cleanup.push(model);

        // Move the weights and BN statistics away from their init: two SGD steps in train mode on
        // other random images, then BN affine parameters and running stats drawn at random
        // (num_batches_tracked too), loaded through loadStateDict.
        const warm = new Dataset(randomBatch(31 + cfg.channels, 16, cfg.channels, SIZE, NUM_CLASSES));
        cleanup.push(warm);
        await model.trainEpoch(warm, Int32Array.from({ length: 16 }, (_, i) => i), {
          lr: 0.05, batchSize: 8, bnMode: 'train', normalize: { mean: [...cfg.mean], std: [...cfg.std] },
        });
        // Bring the running stats near the real activation statistics first (train-mode forwards,
        // momentum 0.1), so eval-mode logits stay O(1) rather than blowing up through 18 layers.
        for (let i = 0; i < 20; i++) await model.evaluate(warm, { batchSize: 16, bnMode: 'train', normalize: { mean: [...cfg.mean], std: [...cfg.std] } });
        const r = rng(41 + cfg.channels);
        const state = model.stateDict();
        for (const e of state) {
          const d = e.data;
          if (d instanceof BigInt64Array) d[0] = 1000n + BigInt(Math.floor(r() * 1000));
          else if (e.name.endsWith('.running_mean')) for (let i = 0; i < d.length; i++) d[i] += (r() - 0.5) * 0.2;
          else if (e.name.endsWith('.running_var')) for (let i = 0; i < d.length; i++) d[i] *= 0.7 + 0.6 * r();
          else if (/bn\d\.weight$|downsample\.1\.weight$/.test(e.name)) for (let i = 0; i < d.length; i++) d[i] = 0.6 + 0.8 * r();
          else if (/bn\d\.bias$|downsample\.1\.bias$/.test(e.name)) for (let i = 0; i < d.length; i++) d[i] = (r() - 0.5) * 0.4;
        }
        model.loadStateDict(state);

        const weights = path.join(dir, `btm-${cfg.channels}ch-weights.safetensors`);
        await writeSafetensors(weights, model.stateDict());

        const batch = randomBatch(51 + cfg.channels, N, cfg.channels, SIZE, NUM_CLASSES);
        const data = new Dataset(batch);
        cleanup.push(data);
        const input = normalizedInput(batch, [...cfg.mean], [...cfg.std]);

        const t0 = performance.now();
        const ref = await torchvisionForward(`btm-${cfg.channels}ch`, weights, cfg.channels, input);
        console.log(`[btm->torchvision ${cfg.name}] python ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        await compareWithTorchvision(`btm->torchvision ${cfg.name}`, model, data, cfg, ref);
        const nbt = stateDictToMap(model.stateDict()).get('bn1.num_batches_tracked')!.data[0];
        expect(nbt).toBe((state.find((e) => e.name === 'bn1.num_batches_tracked')!.data[0] as bigint) + 1n);
      });

      it(`torchvision's init in btm-node, ${cfg.name}: load, logits (eval, train-mode BN) and running stats`, async () => {
        // torchvision's own random init (torch.manual_seed), its BN affine drawn at random and its
        // running stats moved by three train-mode forwards on random data.
        const weights = path.join(dir, `tv-${cfg.channels}ch-weights.safetensors`);
        const script = [
          'import sys, torch, torchvision',
          `sys.path.insert(0, ${JSON.stringify(INTEROP)})`,
          'import safetensors_io',
          'out, nc, cin, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])',
          'torch.manual_seed(seed)',
          'm = torchvision.models.resnet18(weights=None, num_classes=nc)',
          'if cin != 3: m.conv1 = torch.nn.Conv2d(cin, 64, 7, 2, 3, bias=False)',
          'with torch.no_grad():',
          '    for mod in m.modules():',
          '        if isinstance(mod, torch.nn.BatchNorm2d):',
          '            mod.weight.uniform_(0.6, 1.4)',
          '            mod.bias.uniform_(-0.2, 0.2)',
          '    m.train()',
          '    for _ in range(3): m(torch.randn(8, cin, 32, 32))',
          'safetensors_io.save(out, m.state_dict())',
        ].join('\n');
        const t0 = performance.now();
        py(['-c', script, weights, String(NUM_CLASSES), String(cfg.channels), String(1234 + cfg.channels)]);

        const { dict } = await readSafetensors(weights);
        const model = new Model({ arch: 'resnet18', numClasses: NUM_CLASSES, inChannels: cfg.channels, seed: 99 });
        cleanup.push(model);
        model.loadStateDict(dict);
        // The load is exact, entry for entry, in torchvision's order.
        const loaded = model.stateDict();
        expect(loaded.map((e) => e.name)).toEqual(dict.map((e) => e.name));
        const mismatched = loaded.filter((e, i) => !bytesOf(e.data).equals(bytesOf(dict[i].data))).map((e) => e.name);
        expect(mismatched).toEqual([]);
        expect(stateDictToMap(loaded).get('bn1.num_batches_tracked')!.data[0]).toBe(3n);

        const batch = randomBatch(61 + cfg.channels, N, cfg.channels, SIZE, NUM_CLASSES);
        const data = new Dataset(batch);
        cleanup.push(data);
        const input = normalizedInput(batch, [...cfg.mean], [...cfg.std]);
        const ref = await torchvisionForward(`tv-${cfg.channels}ch`, weights, cfg.channels, input);
        console.log(`[torchvision->btm ${cfg.name}] python ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        await compareWithTorchvision(`torchvision->btm ${cfg.name}`, model, data, cfg, ref);
        expect(stateDictToMap(model.stateDict()).get('bn1.num_batches_tracked')!.data[0]).toBe(4n);
      });
    }
  },
);
