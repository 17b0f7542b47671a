// MORE (model rebalancing): the low-rank factors, the two paths, the merge, the loss and the schedule.
//  - B = 0 when the factors are attached: the model computes exactly what it did (both paths);
//  - after MORE training (B != 0) the merged model (stateDict / mergeLowRank) gives the full path's
//    logits, its state dict has the plain model's names and shapes, and the paths really differ;
//  - the native MORE loss on fixed logits equals a float64 TypeScript reference (l2 and KL, mixup,
//    logit offsets), and trainEpoch reports that same loss on the two paths' logits;
//  - the schedule's coefficient at chosen steps equals A sin(pi t / T);
//  - bad input is refused with a message naming it.
import { describe, expect, it } from 'vitest';
import { Dataset, Model } from '../../src/index.js';
import { moreClassWeights, moreCoefficient, moreCoefficients } from '../../src/more.js';
import { native } from '../../src/native.js';
import { randomTask, range } from '../helpers/synthetic.js';

const C = 4;
const task = (n: number, seed: number) => randomTask({ n, numClasses: C, size: 8, channels: 1, seed });

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A resnet8 trained a few MORE steps, so that B != 0. */
async function moreTrained(seed: number, layers?: string[]) {
  const ds = new Dataset(task(32, seed));
  const model = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, seed });
  model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
  model.setLowRank({ rank: 3, layers });
  const more = { coefficient: 0.5, classWeights: [2, 1, 0.6, 0.4] };
  for (let e = 0; e < 3; e++) await model.trainEpoch(ds, range(32), { lr: 0.1, batchSize: 8, more });
  return { ds, model };
}

describe('low-rank factors', () => {
  it('B = 0 at attach: full and general paths give exactly the plain logits', async () => {
    const ds = new Dataset(task(16, 1));
    const model = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, seed: 1 });
    const plain = (await model.evaluate(ds, { logits: true })).logits!;
    model.setLowRank({ rank: 4 });
    expect(model.lowRank!.rank).toBe(4);
    // every conv and fc of resnet8: conv1, 3 blocks x 2 convs, fc
    expect(model.lowRank!.layers).toEqual(['conv1', 'layer1.0.conv1', 'layer1.0.conv2', 'layer2.0.conv1', 'layer2.0.conv2', 'layer3.0.conv1', 'layer3.0.conv2', 'fc']);
    const full = (await model.evaluate(ds, { logits: true })).logits!;
    const general = (await model.evaluate(ds, { logits: true, path: 'general' })).logits!;
    expect(Array.from(full)).toEqual(Array.from(plain));
    expect(Array.from(general)).toEqual(Array.from(plain));
    // and a train-mode step from there starts from the plain model's loss
    const twin = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, seed: 1 });
    const a = await model.trainEpoch(ds, range(16), { lr: 0, batchSize: 16, bnMode: 'eval' });
    const b = await twin.trainEpoch(ds, range(16), { lr: 0, batchSize: 16, bnMode: 'eval' });
    expect(a.losses[0]).toBe(b.losses[0]);
  });

  it('after MORE training the merged model equals the full path, in the plain layout', async () => {
    const { ds, model } = await moreTrained(2);
    const full = (await model.evaluate(ds, { logits: true })).logits!;
    const general = (await model.evaluate(ds, { logits: true, path: 'general' })).logits!;
    // the low-rank part changed the function: otherwise the comparison below proves nothing
    expect(maxAbsDiff(full, general)).toBeGreaterThan(1e-3);
    const exported = model.stateDict();
    const plain = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, seed: 9 });
    expect(exported.map((e) => `${e.name}:${e.shape}`)).toEqual(plain.stateDict().map((e) => `${e.name}:${e.shape}`));
    plain.loadStateDict(exported);
    const merged = (await plain.evaluate(ds, { logits: true })).logits!;
    // W_g + B A is formed by the same float32 ops on both sides: tolerance 1e-5 on logits of size ~1
    expect(maxAbsDiff(merged, full)).toBeLessThanOrEqual(1e-5);
    // the folded-BatchNorm inference path also computes the full path
    const folded = (await model.evaluate(ds, { logits: true, foldBatchNorm: true })).logits!;
    expect(maxAbsDiff(folded, full)).toBeLessThanOrEqual(1e-4);
    // merging in place: same logits, factors gone, the same export
    model.mergeLowRank();
    expect(model.lowRank).toBeNull();
    expect(maxAbsDiff((await model.evaluate(ds, { logits: true })).logits!, full)).toBeLessThanOrEqual(1e-5);
    expect(() => model.evaluate(ds, { path: 'general' })).toThrow(/path 'general' needs low-rank factors/);
  });

  it('the general path leaves the BatchNorm running statistics as the full path left them', async () => {
    // two identical MORE-trained models; one step (lr 0, train-mode BatchNorm) with coefficient 1
    // (full and general forwards) and with coefficient 0 (the general forward is skipped)
    const a = await moreTrained(7), b = await moreTrained(7);
    const stats = (m: Model) => m.stateDict().filter((e) => /running_|num_batches/.test(e.name));
    expect(stats(a.model).map((e) => Buffer.from(e.data.buffer).toString('hex'))).toEqual(stats(b.model).map((e) => Buffer.from(e.data.buffer).toString('hex')));
    const w = [1, 1, 1, 1];
    const ra = await a.model.trainEpoch(a.ds, range(16), { lr: 0, batchSize: 16, more: { coefficient: 1, classWeights: w } });
    const rb = await b.model.trainEpoch(b.ds, range(16), { lr: 0, batchSize: 16, more: { coefficient: 0, classWeights: w } });
    expect(ra.losses[0]).toBeGreaterThan(rb.losses[0]);  // the discrepancy term was there
    expect(stats(a.model).map((e) => Buffer.from(e.data.buffer).toString('hex'))).toEqual(stats(b.model).map((e) => Buffer.from(e.data.buffer).toString('hex')));
  });

  it('layers picks the modified layers (a prefix takes the layers under it)', async () => {
    const { ds, model } = await moreTrained(3, ['fc', 'layer3']);
    expect(model.lowRank!.layers).toEqual(['layer3.0.conv1', 'layer3.0.conv2', 'fc']);
    const general = (await model.evaluate(ds, { logits: true, path: 'general' })).logits!;
    const full = (await model.evaluate(ds, { logits: true })).logits!;
    expect(maxAbsDiff(full, general)).toBeGreaterThan(1e-4);
  });

  it('optimizer state leaves the factors out; loadStateDict resets B (the model computes what was loaded)', async () => {
    const { ds, model } = await moreTrained(4);
    const names = model.optimizerState().map((e) => e.name);
    expect(names.some((n) => n.includes('lowrank'))).toBe(false);
    expect(names).toContain('fc.weight.momentum_buffer');
    const exported = model.stateDict();
    model.loadStateDict(exported);  // W_g <- W_g + B A, B <- 0
    expect(model.lowRank).not.toBeNull();
    const full = (await model.evaluate(ds, { logits: true })).logits!;
    const general = (await model.evaluate(ds, { logits: true, path: 'general' })).logits!;
    expect(Array.from(full)).toEqual(Array.from(general));
    model.loadOptimizerState(model.optimizerState());
  });

  it('refuses bad input, naming it', () => {
    const ds = new Dataset(task(8, 5));
    const model = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1 });
    // conv1 of a 1-channel resnet8: weight [16, 1, 3, 3], fan 9
    expect(() => model.setLowRank({ rank: 10 })).toThrow(/rank 10 is larger than layer conv1 allows \(weight \[16, 1, 3, 3\]: at most 9\)/);
    expect(() => model.setLowRank({ rank: 5, layers: ['fc'] })).toThrow(/rank 5 is larger than layer fc allows \(weight \[4, 64\]: at most 4\)/);
    expect(() => model.setLowRank({ rank: 0 })).toThrow(RangeError);
    expect(() => model.setLowRank({ rank: 2, layers: ['layer9'] })).toThrow(/layers \['layer9'\] matches no trained convolution or linear layer/);
    expect(() => model.setLowRank({ rank: 2, layers: [] })).toThrow(/layers is empty/);
    model.setOptimizer({ trainable: 'classifier' });
    expect(() => model.setLowRank({ rank: 2, layers: ['layer3'] })).toThrow(/matches no trained/);
    expect(() => model.trainEpoch(ds, range(8), { lr: 0.1, more: { coefficient: 1, classWeights: [1, 1, 1, 1] } })).toThrow(/more needs low-rank factors/);
    model.setLowRank({ rank: 2 });
    expect(model.lowRank!.layers).toEqual(['fc']);
    expect(() => model.setLowRank({ rank: 2 })).toThrow(/attached already/);
    expect(() => model.trainEpoch(ds, range(8), { lr: 0.1, more: { coefficient: 1, classWeights: [1, 1, 1] } })).toThrow(/more\.classWeights must have length 4/);
    expect(() => model.trainEpoch(ds, range(8), { lr: 0.1, more: { coefficient: -1, classWeights: [1, 1, 1, 1] } })).toThrow(/more\.coefficient must be in/);
    expect(() => model.trainEpoch(ds, range(8), { lr: 0.1, more: { coefficient: 1, classWeights: [1, 1, 1, 1], discrepancy: 'l1' as 'l2' } })).toThrow(/discrepancy must be one of 'l2', 'kl'/);
    expect(() => model.trainEpoch(ds, range(8), { lr: 0.1, more: { coefficient: [1, 1], classWeights: [1, 1, 1, 1] }, batchSize: 8 })).toThrow(/more\.coefficient must have length 1/);
  });
});

// ------------------------------------------------------------------------------------------------
// The loss
// ------------------------------------------------------------------------------------------------

interface MoreCase {
  full: number[];
  general: number[];
  labelsA: number[];
  labelsB?: number[];
  lam?: number;
  logitOffsets?: number[];
  classWeights: number[];
  coefficient: number;
  discrepancy: 'l2' | 'kl';
}

function logSoftmax(z: number[]): number[] {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

/** float64: base = CE(full + offsets) with mixed targets; d_i as in native/train/more.h; total = base + coef * mean w_i d_i. */
function reference(c: MoreCase): { base: number; discrepancy: number; total: number } {
  const B = c.labelsA.length, lam = c.lam ?? 1, yb = c.labelsB ?? c.labelsA;
  let base = 0, disc = 0;
  for (let i = 0; i < B; i++) {
    const zf = c.full.slice(i * C, (i + 1) * C), zg = c.general.slice(i * C, (i + 1) * C);
    const lp = logSoftmax(zf.map((v, j) => v + (c.logitOffsets?.[j] ?? 0)));
    base -= lam * lp[c.labelsA[i]] + (1 - lam) * lp[yb[i]];
    let d = 0;
    if (c.discrepancy === 'l2') {
      for (let j = 0; j < C; j++) d += (zf[j] - zg[j]) ** 2 / C;
    } else {
      const lf = logSoftmax(zf), lg = logSoftmax(zg);
      for (let j = 0; j < C; j++) d += Math.exp(lf[j]) * (lf[j] - lg[j]);
    }
    const w = lam * c.classWeights[c.labelsA[i]] + (1 - lam) * c.classWeights[yb[i]];
    disc += w * d;
  }
  return { base: base / B, discrepancy: disc / B, total: base / B + c.coefficient * (disc / B) };
}

function nativeMore(c: MoreCase) {
  return native()._computeMoreLoss({
    full: Float32Array.from(c.full), general: Float32Array.from(c.general), numClasses: C,
    labelsA: Int32Array.from(c.labelsA), labelsB: c.labelsB && Int32Array.from(c.labelsB), lam: c.lam,
    logitOffsets: c.logitOffsets,
    more: { coefficient: c.coefficient, classWeights: c.classWeights, discrepancy: c.discrepancy },
  });
}

// Fixed inputs (chosen by hand): 5 samples, 4 classes; coefficients exact in float32.
const full = [2.0, -1.0, 0.5, 0.0, -0.3, 1.7, 0.2, -2.2, 0.0, 0.0, 0.0, 0.0, 5.0, 4.0, -3.0, 1.0, -1.5, 0.25, 3.0, 0.75];
const general = [1.5, -1.0, 0.25, 0.5, -0.3, 2.0, 0.0, -2.0, 0.5, -0.5, 0.0, 1.0, 4.0, 4.5, -2.0, 1.0, -1.0, 0.0, 2.5, 1.0];
const labelsA = [0, 1, 2, 3, 2], labelsB = [3, 1, 0, 2, 1];
const weights = moreClassWeights([600, 250, 100, 50]);

describe('MORE loss on fixed inputs vs a float64 TypeScript reference', () => {
  const base: MoreCase = { full, general, labelsA, classWeights: weights, coefficient: 0.75, discrepancy: 'l2' };
  const cases: [string, MoreCase][] = [
    ['l2', base],
    ['kl', { ...base, discrepancy: 'kl' }],
    ['l2, mixup lam 0.3', { ...base, labelsB, lam: 0.3 }],
    ['kl, mixup lam 0.8, logit offsets', { ...base, discrepancy: 'kl', labelsB, lam: 0.8, logitOffsets: [0.5, 0, -0.5, -1] }],
    ['coefficient 0: the base loss alone', { ...base, coefficient: 0 }],
  ];
  it.each(cases)('%s', (_name, c) => {
    const want = reference(c), got = nativeMore(c);
    expect(got.base).toBeCloseTo(want.base, 5);
    expect(got.discrepancy).toBeCloseTo(want.discrepancy, 5);
    expect(got.total).toBeCloseTo(want.total, 5);
    expect(want.discrepancy).toBeGreaterThan(0.01);  // the term is not trivially zero
  });

  it('class weights are C times the prior', () => {
    expect(weights).toEqual([2.4, 1, 0.4, 0.2]);
    expect(moreClassWeights([5, 5])).toEqual([1, 1]);
  });

  it('trainEpoch reports base + coefficient * L_MORE on the two paths (lr 0, BatchNorm eval)', async () => {
    const { ds, model } = await moreTrained(6);
    const labels = Array.from(task(32, 6).labels).slice(0, 16);
    const f = Array.from((await model.evaluate(ds, { logits: true, indices: range(16) })).logits!);
    const g = Array.from((await model.evaluate(ds, { logits: true, indices: range(16), path: 'general' })).logits!);
    for (const discrepancy of ['l2', 'kl'] as const) {
      const r = await model.trainEpoch(ds, range(16), {
        lr: 0, batchSize: 16, bnMode: 'eval', more: { coefficient: 2, classWeights: weights, discrepancy },
      });
      const want = reference({ full: f, general: g, labelsA: labels, classWeights: weights, coefficient: 2, discrepancy });
      expect(want.discrepancy).toBeGreaterThan(1e-4);
      expect(r.losses[0]).toBeCloseTo(want.total, 4);
    }
  });
});

describe('the sinusoidal schedule', () => {
  const cfg = { amplitude: 3, schedule: 'sine' as const };
  it('A sin(pi t / T) at chosen steps', () => {
    const T = 1000;
    expect(moreCoefficient(cfg, 0, T)).toBe(0);
    expect(moreCoefficient(cfg, 250, T)).toBeCloseTo(3 * Math.SQRT1_2, 12);
    expect(moreCoefficient(cfg, 500, T)).toBe(3);  // the peak, A
    expect(moreCoefficient(cfg, 750, T)).toBeCloseTo(3 * Math.SQRT1_2, 12);
    expect(moreCoefficient(cfg, 100, T)).toBeCloseTo(3 * Math.sin(Math.PI / 10), 12);
    expect(moreCoefficient({ amplitude: 3, schedule: 'constant' }, 123, T)).toBe(3);
    const c = moreCoefficients(cfg, 498, 4, T);
    expect(Array.from(c)).toEqual([498, 499, 500, 501].map((t) => Math.fround(3 * Math.sin((Math.PI * t) / T))));
  });
});
