// PEFT modules (native/models/peft.h, LIFT): what trains, what stays frozen, and export.
//  - attached, every module is an exact no-op: the logits are bit-identical to the plain model's;
//  - after training with trainable 'peft', every frozen tensor (weights, BatchNorm statistics) is
//    bit-unchanged and every chosen one has moved;
//  - the exported state (LoRA and SSF merged, AdaptFormer / adapters by name, the cosine head as s W_n)
//    loaded into a fresh model gives the trained model's logits (tolerance 1e-5 x max(1, max |logit|):
//    the merged weights round differently from the unmerged sum);
//  - torchvision loads the merged ViT (LoRA + SSF + BitFit) strictly and gives the same logits;
//  - bad input gets a message naming it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Dataset, Model } from '../../src/index.js';
import type { Arch, PeftOptions } from '../../src/model.js';
import { readSafetensors, writeSafetensors } from '../../src/safetensors.js';
import { stateDictToMap, type StateDict, type StateEntry } from '../../src/state-dict.js';
import { PYTHON, torchvisionUnavailable } from '../helpers/python.js';
import { randomTask, range } from '../helpers/synthetic.js';

const C = 4;
const vitTask = (n: number, seed: number) => randomTask({ n, numClasses: C, size: 8, channels: 1, seed });
const newViT = (seed = 1) => new Model({ arch: 'vit_mini_p4', numClasses: C, inChannels: 1, imageSize: 8, seed });
const newResNet = (seed = 1) => new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, seed });

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const bytes = (e: StateEntry) => Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);

/** Names whose bytes differ between two state dicts of the same names. */
function changed(a: StateDict, b: StateDict): string[] {
  const bm = stateDictToMap(b);
  return a.filter((e) => !bytes(e).equals(bytes(bm.get(e.name)!))).map((e) => e.name);
}

/** A model given a non-trivial head and trunk (a few full steps), so the no-op checks mean something. */
async function warmed(make: () => Model, ds: Dataset) {
  const m = make();
  m.setOptimizer({ trainable: 'all' });
  await m.trainEpoch(ds, range(16), { lr: 0.05, batchSize: 8 });
  return m;
}

async function peftTrained(make: () => Model, ds: Dataset, peft: PeftOptions, epochs = 2, bnMode: 'train' | 'eval' = 'train') {
  const m = await warmed(make, ds);
  const before = m.stateDict();
  m.setPeft(peft);
  m.setOptimizer({ trainable: 'peft', momentum: 0.9, weightDecay: 5e-4 });
  for (let e = 0; e < epochs; e++) await m.trainEpoch(ds, range(32), { lr: 0.05, batchSize: 8, bnMode });
  return { m, before };
}

describe('PEFT modules start as exact no-ops', () => {
  it('ViT: lora + ssf + adaptformer + bitfit + norm give the plain logits bit for bit', async () => {
    using ds = new Dataset(vitTask(16, 1));
    using m = await warmed(() => newViT(1), ds);
    const plain = (await m.evaluate(ds, { logits: true })).logits!;
    expect(maxAbs(plain)).toBeGreaterThan(1e-3);
    m.setPeft({ modules: ['lora', 'ssf', 'adaptformer', 'bitfit', 'norm'], rank: 4 });
    expect(m.peft).toMatchObject({ modules: ['bitfit', 'norm', 'lora', 'ssf', 'adaptformer'], rank: 4, bottleneck: 1, head: 'linear' });
    const after = (await m.evaluate(ds, { logits: true })).logits!;
    expect(Array.from(after)).toEqual(Array.from(plain));
  });

  it('ResNet: bitfit + norm + ssf + adapter give the plain logits bit for bit (folded BN too)', async () => {
    using ds = new Dataset(vitTask(16, 2));
    using m = await warmed(() => newResNet(2), ds);
    const plain = (await m.evaluate(ds, { logits: true })).logits!;
    m.setPeft({ modules: ['bitfit', 'norm', 'ssf', 'adapter'] });
    expect(Array.from((await m.evaluate(ds, { logits: true })).logits!)).toEqual(Array.from(plain));
    const folded = (await m.evaluate(ds, { logits: true, foldBatchNorm: true })).logits!;
    expect(maxAbsDiff(folded, plain)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(plain)));
  });
});

describe('only the chosen parameters train', () => {
  it('ViT LoRA: q and v rows of in_proj_weight and the head move; k rows and everything else bit-unchanged', async () => {
    using ds = new Dataset(vitTask(32, 3));
    const { m, before } = await peftTrained(() => newViT(3), ds, { modules: ['lora'], rank: 2 });
    using _m = m;
    const after = m.stateDict();
    const moved = changed(after, before);
    const layers = 6;
    expect(moved.sort()).toEqual([
      'heads.head.bias', 'heads.head.weight',
      ...Array.from({ length: layers }, (_, i) => `encoder.layers.encoder_layer_${i}.self_attention.in_proj_weight`),
    ].sort());
    const D = 128;
    const am = stateDictToMap(after), bm = stateDictToMap(before);
    for (let i = 0; i < layers; i++) {
      const n = `encoder.layers.encoder_layer_${i}.self_attention.in_proj_weight`;
      const a = am.get(n)!.data as Float32Array, b = bm.get(n)!.data as Float32Array;
      const rows = (r0: number) => [a.subarray(r0 * D * D, (r0 + 1) * D * D), b.subarray(r0 * D * D, (r0 + 1) * D * D)] as const;
      expect(maxAbsDiff(...rows(0))).toBeGreaterThan(0); // q
      expect(Buffer.from(rows(1)[0].buffer, rows(1)[0].byteOffset, rows(1)[0].byteLength)
        .equals(Buffer.from(rows(1)[1].buffer, rows(1)[1].byteOffset, rows(1)[1].byteLength))).toBe(true); // k untouched
      expect(maxAbsDiff(...rows(2))).toBeGreaterThan(0); // v
    }
    const info = m.peft!;
    // head (C x D + C) + 6 layers x 4 factors of rank 2 x D
    expect(info.trainedParameters).toBe(C * D + C + layers * 4 * 2 * D);
  });

  it('ViT BitFit: every bias (and the head) moves, every other tensor is bit-unchanged', async () => {
    using ds = new Dataset(vitTask(32, 4));
    const { m, before } = await peftTrained(() => newViT(4), ds, { modules: ['bitfit'] });
    using _m = m;
    const moved = changed(m.stateDict(), before);
    const biases = before.map((e) => e.name).filter((n) => n.endsWith('bias'));
    expect(moved.sort()).toEqual([...biases, 'heads.head.weight'].sort());
  });

  it('ResNet without norm tuning: BatchNorm stays in eval mode (statistics bit-unchanged); bitfit + adapter move', async () => {
    using ds = new Dataset(vitTask(32, 5));
    const { m, before } = await peftTrained(() => newResNet(5), ds, { modules: ['bitfit', 'adapter'] }, 2, 'train');
    using _m = m;
    const after = m.stateDict();
    const moved = changed(after.filter((e) => !e.name.includes('.adapter.')), before);
    const expected = [...before.map((e) => e.name).filter((n) => n.endsWith('.bias')), 'fc.weight'];
    expect(moved.sort()).toEqual(expected.sort());
    const adapters = after.filter((e) => e.name.includes('.adapter.'));
    expect(adapters.map((e) => e.name)).toEqual(['layer1.0.adapter.weight', 'layer2.0.adapter.weight', 'layer3.0.adapter.weight']);
    for (const a of adapters) expect(maxAbs(a.data as Float32Array)).toBeGreaterThan(0);
  });

  it('ResNet norm tuning: BatchNorm affine and running statistics move, convolutions do not', async () => {
    using ds = new Dataset(vitTask(32, 6));
    const { m, before } = await peftTrained(() => newResNet(6), ds, { modules: ['norm'] });
    using _m = m;
    const moved = new Set(changed(m.stateDict(), before));
    for (const e of before) {
      const isBn = /(^bn1|\.bn\d)\.(weight|bias|running_mean|running_var|num_batches_tracked)$/.test(e.name);
      const isHead = e.name.startsWith('fc.');
      expect([e.name, moved.has(e.name)]).toEqual([e.name, isBn || isHead]);
    }
  });
});

describe('export: merged state == the unmerged model', () => {
  const tol = (ref: ArrayLike<number>) => 1e-5 * Math.max(1, maxAbs(ref));

  it('ViT LoRA + SSF + BitFit merge into the plain torchvision layout', async () => {
    using ds = new Dataset(vitTask(32, 7));
    const { m } = await peftTrained(() => newViT(7), ds, { modules: ['lora', 'ssf', 'bitfit'], rank: 4 }, 3);
    using _m = m;
    const live = (await m.evaluate(ds, { logits: true })).logits!;
    using plain = newViT(99);
    expect(plain.stateDict().map((e) => e.name)).toEqual(m.stateDict().map((e) => e.name));
    plain.loadStateDict(m.stateDict());
    const merged = (await plain.evaluate(ds, { logits: true })).logits!;
    const d = maxAbsDiff(merged, live);
    console.log(`[peft export vit lora+ssf+bitfit] max |logit| ${maxAbs(live).toPrecision(4)}, max abs diff ${d.toExponential(3)}`);
    expect(d).toBeLessThanOrEqual(tol(live));
    // loading the merged state back into the PEFT model resets LoRA / SSF: the same function again
    m.loadStateDict(m.stateDict());
    expect(maxAbsDiff((await m.evaluate(ds, { logits: true })).logits!, live)).toBeLessThanOrEqual(tol(live));
  });

  it('ViT AdaptFormer + cosine head: saved by name, loaded back by a model with the same modules', async () => {
    using ds = new Dataset(vitTask(32, 8));
    const { m } = await peftTrained(() => newViT(8), ds, { modules: ['adaptformer', 'lora'], bottleneck: 8, head: 'cosine' }, 3);
    using _m = m;
    const live = (await m.evaluate(ds, { logits: true })).logits!;
    const st = m.stateDict();
    const names = st.map((e) => e.name).filter((n) => n.includes('.adaptformer.'));
    expect(names.slice(0, 7)).toEqual(['scale', 'ln.weight', 'ln.bias', 'down.weight', 'down.bias', 'up.weight', 'up.bias']
      .map((k) => `encoder.layers.encoder_layer_0.adaptformer.${k}`));
    expect(names).toHaveLength(6 * 7);
    // a plain model refuses it, naming the extra entries
    using plain = newViT(98);
    expect(() => plain.loadStateDict(st)).toThrow(/adaptformer/);
    using back = newViT(97);
    back.setPeft({ modules: ['adaptformer'], bottleneck: 8, head: 'cosine' });
    back.loadStateDict(st);
    const again = (await back.evaluate(ds, { logits: true })).logits!;
    expect(maxAbsDiff(again, live)).toBeLessThanOrEqual(tol(live));
    // the cosine head is exported as the linear head s W_n with zero bias: its rows have norm 25
    const w = stateDictToMap(st).get('heads.head.weight')!.data as Float32Array;
    const D = 128;
    for (let c = 0; c < C; c++) expect(Math.hypot(...w.subarray(c * D, (c + 1) * D))).toBeCloseTo(25, 3);
    // and the cosine logits are bounded by the scale
    expect(maxAbs(live)).toBeLessThanOrEqual(25 + 1e-4);
  });

  it('ResNet SSF + BitFit + adapter: merged into BatchNorm, adapters by name; folded BN agrees', async () => {
    using ds = new Dataset(vitTask(32, 9));
    const { m } = await peftTrained(() => newResNet(9), ds, { modules: ['ssf', 'bitfit', 'adapter'] }, 3);
    using _m = m;
    const live = (await m.evaluate(ds, { logits: true })).logits!;
    using back = newResNet(96);
    back.setPeft({ modules: ['adapter'] });
    back.loadStateDict(m.stateDict());
    const merged = (await back.evaluate(ds, { logits: true })).logits!;
    expect(maxAbsDiff(merged, live)).toBeLessThanOrEqual(tol(live));
    const folded = (await m.evaluate(ds, { logits: true, foldBatchNorm: true })).logits!;
    expect(maxAbsDiff(folded, live)).toBeLessThanOrEqual(tol(live));
  });
});

const skipReason = torchvisionUnavailable();
const FORWARD = fileURLToPath(new URL('../interop/vit_forward.py', import.meta.url));

describe.skipIf(skipReason !== undefined)(`merged ViT in torchvision${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('torchvision VisionTransformer loads the merged LoRA + SSF + BitFit vit_mini_p4 strictly and gives the same logits', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-peft-tv-'));
    try {
      using ds = new Dataset(vitTask(32, 10));
      const { m } = await peftTrained(() => newViT(10), ds, { modules: ['lora', 'ssf', 'bitfit'], rank: 4 }, 2);
      using _m = m;
      const live = await m.evaluate(ds, { logits: true, indices: range(8) });
      const weights = path.join(dir, 'w.safetensors'), input = path.join(dir, 'x.safetensors'), out = path.join(dir, 'o.safetensors');
      await writeSafetensors(weights, m.stateDict());
      const src = vitTask(32, 10);
      const x = Float32Array.from(src.images.subarray(0, 8 * 64), (v) => Math.fround(v / 255));
      await writeSafetensors(input, [{ name: 'input', shape: [8, 1, 8, 8], dtype: 'float32', data: x }]);
      const arch: Arch = 'vit_mini_p4';
      execFileSync(PYTHON, [FORWARD, '--arch', arch, '--num-classes', String(C), '--in-channels', '1', '--image-size', '8',
        '--weights', weights, '--input', input, '--out', out], { timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
      const ref = stateDictToMap((await readSafetensors(out)).dict).get('logits')!.data as Float32Array;
      const d = maxAbsDiff(live.logits!, ref);
      console.log(`[peft merged vit_mini_p4 -> torchvision] max |logit| ${maxAbs(ref).toPrecision(4)}, max abs diff ${d.toExponential(3)}`);
      expect(d).toBeLessThanOrEqual(2e-4 * Math.max(1, maxAbs(ref)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('bad input', () => {
  it('names the module, the architecture, the rank and the order of calls', () => {
    using r = newResNet();
    expect(() => r.setPeft({ modules: ['lora'] })).toThrow(/modules\[0\] 'lora' does not apply to resnet8 \(a ResNet has no layers for it; its modules: 'bitfit', 'norm', 'ssf', 'adapter'\)/);
    expect(() => r.setPeft({ modules: ['adaptformer'] })).toThrow(/'adaptformer' does not apply to resnet8/);
    expect(() => r.setPeft({ modules: ['prompt' as never] })).toThrow(/modules\[0\] is 'prompt', not a module/);
    expect(() => r.setOptimizer({ trainable: 'peft' })).toThrow(/trainable 'peft' needs PEFT modules: call setPeft/);
    using v = newViT();
    expect(() => v.setPeft({ modules: ['adapter'] })).toThrow(/'adapter' does not apply to vit_mini_p4/);
    expect(() => v.setPeft({ modules: ['lora'], rank: 0 })).toThrow(/rank/);
    expect(() => v.setPeft({ modules: ['lora'], rank: 129 })).toThrow(/rank/);
    expect(() => v.setPeft({ modules: ['ssf'], rank: 4 })).toThrow(/rank is for 'lora'/);
    expect(() => v.setPeft({ modules: ['lora', 'lora'] })).toThrow(/listed twice/);
    v.setPeft({ modules: ['lora'] });
    expect(() => v.setPeft({ modules: ['ssf'] })).toThrow(/attached already/);
    expect(() => v.setLowRank({ rank: 2 })).toThrow(/do not combine with PEFT/);
  });
});
