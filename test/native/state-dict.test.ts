/**
 * Native state dicts: torchvision layouts (names, order, shapes, dtypes), parameter counts, and
 * bit-exact export / load / export round trips (directly and through safetensors).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataset } from '../../src/dataset.js';
import { Model, type ModelOptions } from '../../src/model.js';
import { readSafetensors, writeSafetensors } from '../../src/safetensors.js';
import { compareStateDictLayout, stateDictToMap, type EntryLayout, type StateDict, type StateEntry } from '../../src/state-dict.js';
import { RESNET18_KEYS, RESNET50_KEYS } from '../fixtures/torchvision-keys.js';
import { Rng } from '../../src/sampling/rng.js';

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

/** A seeded uniform [0, 1) stream (the project's Rng), so failures reproduce. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.nextFloat();
}

/** n random uint8 images (NCHW) with random labels in [0, numClasses). */
function randomDataset(seed: number, n: number, channels: number, size: number, numClasses: number): Dataset {
  const r = rng(seed);
  const images = new Uint8Array(n * channels * size * size);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(r() * 256);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(r() * numClasses);
  return new Dataset({ images, labels, n, channels, height: size, width: size });
}

const range = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

function layoutOf(dict: StateDict): EntryLayout[] {
  return dict.map(({ name, shape, dtype }) => ({ name, shape, dtype }));
}

function bytesOf(data: StateEntry['data']): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Names of the entries whose layout or bytes differ (empty when `a` and `b` are identical, entry by
 * entry and in the same order). Bytes, not values: NaN payloads, -0 and int64s all count.
 */
function byteDiffs(a: StateDict, b: StateDict): string[] {
  const diffs: string[] = [];
  if (a.length !== b.length) diffs.push(`length ${a.length} vs ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i], y = b[i];
    if (x.name !== y.name) diffs.push(`[${i}] name '${x.name}' vs '${y.name}'`);
    else if (x.dtype !== y.dtype || x.shape.join(',') !== y.shape.join(',')) diffs.push(`'${x.name}': layout`);
    else if (x.data.constructor !== y.data.constructor) diffs.push(`'${x.name}': ${x.data.constructor.name} vs ${y.data.constructor.name}`);
    else if (!bytesOf(x.data).equals(bytesOf(y.data))) diffs.push(`'${x.name}': bytes differ`);
  }
  return diffs;
}

const isBuffer = (name: string) => /\.(running_mean|running_var|num_batches_tracked)$/.test(name);

/** Parameters only (BatchNorm buffers excluded), as torch's sum(p.numel() for p in parameters()). */
function parameterCount(dict: StateDict): number {
  return dict.filter((e) => !isBuffer(e.name)).reduce((s, e) => s + e.data.length, 0);
}

/** Every entry's data is a typed array of the entry's dtype with exactly prod(shape) elements. */
function checkEntries(dict: StateDict): string[] {
  const bad: string[] = [];
  for (const e of dict) {
    const numel = e.shape.reduce((a, b) => a * b, 1);
    const want = e.dtype === 'int64' ? BigInt64Array : Float32Array;
    if (!(e.data instanceof want)) bad.push(`'${e.name}': ${e.data.constructor.name} for ${e.dtype}`);
    if (e.data.length !== numel) bad.push(`'${e.name}': ${e.data.length} elements for shape [${e.shape}]`);
  }
  return bad;
}

const models: Model[] = [];
const datasets: Dataset[] = [];
function model(options: ModelOptions): Model {
  const m = new Model(options);
  models.push(m);
  return m;
}
function dataset(...args: Parameters<typeof randomDataset>): Dataset {
  const d = randomDataset(...args);
  datasets.push(d);
  return d;
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-state-dict-'));
});
afterAll(() => {
  for (const m of models) if (!m.disposed) m.dispose();
  for (const d of datasets) if (!d.disposed) d.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------
// Layouts and parameter counts
// ------------------------------------------------------------------------------------------------

describe('torchvision layouts', () => {
  for (const [arch, keys, numParameters, featureDim] of [
    ['resnet18', RESNET18_KEYS, 11_689_512, 512],
    ['resnet50', RESNET50_KEYS, 25_557_032, 2048],
  ] as const) {
    it(`${arch} (1000 classes, 3 channels) matches torchvision's state_dict exactly, in order`, () => {
      const m = model({ arch, numClasses: 1000, inChannels: 3 });
      const dict = m.stateDict();
      const layout = layoutOf(dict);
      expect(compareStateDictLayout(keys, layout)).toEqual([]);
      expect(layout.map((e) => e.name)).toEqual(keys.map((e) => e.name)); // order
      expect(layout).toEqual(keys.map(({ name, shape, dtype }) => ({ name, shape: [...shape], dtype })));
      expect(checkEntries(dict)).toEqual([]);
      // torchvision: sum(p.numel() for p in models.<arch>().parameters()) (checked with torch 1.13 /
      // torchvision 0.14).
      expect(m.info.numParameters).toBe(numParameters);
      expect(parameterCount(dict)).toBe(numParameters);
      expect(m.info.featureDim).toBe(featureDim);
      m.dispose();
    });
  }

  it('resnext50_32x4d: grouped 3x3 conv shape and torchvision parameter count', () => {
    const m = model({ arch: 'resnext50_32x4d', numClasses: 1000 });
    const dict = m.stateDict();
    const byName = stateDictToMap(dict);
    // width = planes * (4/64) * 32 = 128 for layer1; groups 32 -> 128/32 = 4 input channels per group.
    expect(byName.get('layer1.0.conv2.weight')?.shape).toEqual([128, 4, 3, 3]);
    expect(byName.get('layer1.0.conv1.weight')?.shape).toEqual([128, 64, 1, 1]);
    expect(byName.get('layer4.2.conv2.weight')?.shape).toEqual([1024, 32, 3, 3]);
    expect(byName.get('fc.weight')?.shape).toEqual([1000, 2048]);
    // Same module structure as resnet50 (only conv widths differ): same names in the same order.
    expect(dict.map((e) => e.name)).toEqual(RESNET50_KEYS.map((e) => e.name));
    expect(checkEntries(dict)).toEqual([]);
    // torchvision.models.resnext50_32x4d(): 25,028,904 parameters (torch 1.13 / torchvision 0.14).
    expect(m.info.numParameters).toBe(25_028_904);
    expect(parameterCount(dict)).toBe(25_028_904);
    m.dispose();
  });

  it('CIFAR resnet32 (10 classes): torchvision naming scheme, no downsample, 464,154 parameters', () => {
    const m = model({ arch: 'resnet32', numClasses: 10 });
    const dict = m.stateDict();
    const bn = (p: string, c: number): EntryLayout[] => [
      { name: `${p}.weight`, shape: [c], dtype: 'float32' },
      { name: `${p}.bias`, shape: [c], dtype: 'float32' },
      { name: `${p}.running_mean`, shape: [c], dtype: 'float32' },
      { name: `${p}.running_var`, shape: [c], dtype: 'float32' },
      { name: `${p}.num_batches_tracked`, shape: [], dtype: 'int64' },
    ];
    const expected: EntryLayout[] = [{ name: 'conv1.weight', shape: [16, 3, 3, 3], dtype: 'float32' }, ...bn('bn1', 16)];
    let inPlanes = 16;
    for (let s = 1; s <= 3; s++) {
      const c = 16 << (s - 1);
      for (let b = 0; b < 5; b++) {
        const p = `layer${s}.${b}`;
        expected.push({ name: `${p}.conv1.weight`, shape: [c, inPlanes, 3, 3], dtype: 'float32' }, ...bn(`${p}.bn1`, c));
        expected.push({ name: `${p}.conv2.weight`, shape: [c, c, 3, 3], dtype: 'float32' }, ...bn(`${p}.bn2`, c));
        inPlanes = c;
      }
    }
    expected.push({ name: 'fc.weight', shape: [10, 64], dtype: 'float32' }, { name: 'fc.bias', shape: [10], dtype: 'float32' });

    const layout = layoutOf(dict);
    expect(compareStateDictLayout(expected, layout)).toEqual([]);
    expect(layout).toEqual(expected); // same order too
    const byName = stateDictToMap(dict);
    expect(byName.get('conv1.weight')?.shape).toEqual([16, 3, 3, 3]);
    expect(byName.get('layer3.4.conv2.weight')?.shape).toEqual([64, 64, 3, 3]);
    expect(byName.get('fc.weight')?.shape).toEqual([10, 64]);
    expect(dict.filter((e) => e.name.includes('downsample'))).toEqual([]);
    expect(checkEntries(dict)).toEqual([]);

    // Option-A ResNet-32 (He et al. 2016, CIFAR), 10 classes, by hand:
    //   stem     conv 16*3*9 = 432, bn 2*16 = 32                                        ->    464
    //   layer1   5 blocks * (2 * 16*16*9 + 2 * 2*16) = 5 * 4672                        ->  23360
    //   layer2   (32*16*9 + 32*32*9 + 2*2*32) + 4 * (2 * 32*32*9 + 2*2*32)
    //            = 13952 + 4 * 18560                                                   ->  88192
    //   layer3   (64*32*9 + 64*64*9 + 2*2*64) + 4 * (2 * 64*64*9 + 2*2*64)
    //            = 55552 + 4 * 73984                                                   -> 351488
    //   fc       64*10 + 10                                                             ->    650
    //   total                                                                              464154
    // (option-A shortcuts have no parameters).
    expect(m.info.numParameters).toBe(464_154);
    expect(parameterCount(dict)).toBe(464_154);
    expect(m.info.featureDim).toBe(64);
    m.dispose();
  });
});

// ------------------------------------------------------------------------------------------------
// Round trips
// ------------------------------------------------------------------------------------------------

describe('state round trips are bit-exact', () => {
  const opts = { arch: 'resnet18', numClasses: 10, inChannels: 3 } as const;

  /** A model trained for two steps: weights, BN running stats and num_batches_tracked all moved. */
  async function trained(seed: number): Promise<Model> {
    const m = model({ ...opts, seed });
    const data = dataset(100 + seed, 16, 3, 32, 10);
    const r = await m.trainEpoch(data, range(16), { lr: 0.1, batchSize: 8, bnMode: 'train' });
    expect(r.steps).toBe(2);
    return m;
  }

  it('fresh model: export, load into a differently seeded model, export again', () => {
    const a = model({ ...opts, seed: 1 });
    const b = model({ ...opts, seed: 2 });
    const sa = a.stateDict();
    const before = b.stateDict();
    // The seeds must give different weights, or the test proves nothing.
    expect(bytesOf(stateDictToMap(before).get('conv1.weight')!.data).equals(bytesOf(stateDictToMap(sa).get('conv1.weight')!.data))).toBe(false);
    expect(byteDiffs(sa, before).length).toBeGreaterThan(0);
    b.loadStateDict(sa);
    expect(byteDiffs(sa, b.stateDict())).toEqual([]);
    expect(byteDiffs(sa, a.stateDict())).toEqual([]); // exporting does not change the source
  });

  it('after training (non-trivial BN stats and num_batches_tracked)', async () => {
    const a = await trained(3);
    const sa = a.stateDict();
    const byName = stateDictToMap(sa);
    expect(byName.get('bn1.num_batches_tracked')!.data).toEqual(BigInt64Array.of(2n));
    expect(byName.get('layer4.1.bn2.num_batches_tracked')!.data).toEqual(BigInt64Array.of(2n));
    expect(byName.get('bn1.running_mean')!.data.some((v) => v !== 0)).toBe(true);
    expect(byName.get('bn1.running_var')!.data.some((v) => v !== 1)).toBe(true);

    const b = model({ ...opts, seed: 4 });
    b.loadStateDict(sa);
    expect(byteDiffs(sa, b.stateDict())).toEqual([]);
  });

  it('special values: int64 counters beyond 2^53, -0, denormals and NaN payloads survive', () => {
    const a = model({ ...opts, seed: 5 });
    const sa = a.stateDict();
    const byName = stateDictToMap(sa);
    byName.get('bn1.num_batches_tracked')!.data = BigInt64Array.of(2n ** 62n + 12345n);
    byName.get('layer2.0.downsample.1.num_batches_tracked')!.data = BigInt64Array.of(-(2n ** 63n));
    const special = new Uint32Array([0x80000000, 0x00000001, 0x807fffff, 0x7fc00001, 0xffc12345, 0x7f7fffff]);
    const rv = byName.get('layer1.0.bn1.running_var')!;
    const patched = new Float32Array(rv.data as Float32Array);
    patched.set(new Float32Array(special.buffer));
    rv.data = patched;

    const b = model({ ...opts, seed: 6 });
    b.loadStateDict(sa);
    const back = b.stateDict();
    expect(byteDiffs(sa, back)).toEqual([]);
    const backMap = stateDictToMap(back);
    expect(backMap.get('bn1.num_batches_tracked')!.data[0]).toBe(2n ** 62n + 12345n);
    expect(new Uint32Array((backMap.get('layer1.0.bn1.running_var')!.data as Float32Array).slice(0, 6).buffer)).toEqual(special);
  });

  it('through safetensors: stateDict -> writeSafetensors -> readSafetensors -> loadStateDict -> stateDict', async () => {
    const a = await trained(7);
    const sa = a.stateDict();
    const file = path.join(dir, 'trained.safetensors');
    await writeSafetensors(file, sa, { arch: 'resnet18' });
    const { dict, metadata } = await readSafetensors(file);
    expect(metadata).toEqual({ arch: 'resnet18' });
    expect(byteDiffs(sa, dict)).toEqual([]); // the file alone is faithful, in state_dict order
    const b = model({ ...opts, seed: 8 });
    b.loadStateDict(dict);
    expect(byteDiffs(sa, b.stateDict())).toEqual([]);
  });

  it('loaded weights give bitwise identical logits (eval and train-mode BN)', async () => {
    const a = await trained(9);
    const b = model({ ...opts, seed: 10 });
    b.loadStateDict(a.stateDict());
    const data = dataset(11, 20, 3, 32, 10);
    const normalize = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
    const ra = await a.evaluate(data, { logits: true, normalize, batchSize: 8 });
    const rb = await b.evaluate(data, { logits: true, normalize, batchSize: 8 });
    expect(ra.logits!.length).toBe(20 * 10);
    expect(ra.logits!.every(Number.isFinite)).toBe(true);
    expect(bytesOf(rb.logits!).equals(bytesOf(ra.logits!))).toBe(true);
    expect(rb.preds).toEqual(ra.preds);

    // Train-mode BN forward (batch statistics, running stats update): identical too.
    const ta = await a.evaluate(data, { logits: true, normalize, batchSize: 10, bnMode: 'train' });
    const tb = await b.evaluate(data, { logits: true, normalize, batchSize: 10, bnMode: 'train' });
    expect(bytesOf(tb.logits!).equals(bytesOf(ta.logits!))).toBe(true);
    expect(bytesOf(ta.logits!).equals(bytesOf(ra.logits!))).toBe(false); // the modes really differ
    expect(byteDiffs(a.stateDict(), b.stateDict())).toEqual([]);
    expect(stateDictToMap(b.stateDict()).get('bn1.num_batches_tracked')!.data[0]).toBe(4n); // 2 train + 2 eval batches
  });
});

// ------------------------------------------------------------------------------------------------
// Copies, not views
// ------------------------------------------------------------------------------------------------

describe('stateDict() returns copies', () => {
  it('mutating the returned data does not change the model', () => {
    const m = model({ arch: 'resnet20', numClasses: 10, seed: 12 });
    const first = m.stateDict();
    const reference = m.stateDict();
    for (const e of first) {
      if (e.data instanceof BigInt64Array) e.data.fill(99n);
      else e.data.fill(123.5);
    }
    expect(byteDiffs(reference, m.stateDict())).toEqual([]);
    // Two exports never share memory.
    const again = m.stateDict();
    expect(again.every((e, i) => e.data.buffer !== reference[i].data.buffer)).toBe(true);
  });

  it('loadStateDict copies: mutating the loaded arrays afterwards does not change the model', () => {
    const src = model({ arch: 'resnet20', numClasses: 10, seed: 13 });
    const dst = model({ arch: 'resnet20', numClasses: 10, seed: 14 });
    const state = src.stateDict();
    dst.loadStateDict(state);
    const reference = src.stateDict();
    for (const e of state) {
      if (e.data instanceof BigInt64Array) e.data.fill(-1n);
      else e.data.fill(Number.NaN);
    }
    expect(byteDiffs(reference, dst.stateDict())).toEqual([]);
  });
});
