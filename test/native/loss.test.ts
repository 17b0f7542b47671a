// The training loss (soft-target cross-entropy covering mixup, label-aware smoothing and logit
// offsets) equals a float64 TypeScript reference on fixed inputs, and trainEpoch uses that same loss.
import { describe, expect, it } from 'vitest';
import { Dataset, Model } from '../../src/index.js';
import { native } from '../../src/native.js';
import { randomTask, range } from '../helpers/synthetic.js';

interface LossCase {
  logits: number[];
  numClasses: number;
  labelsA: number[];
  labelsB?: number[];
  lam?: number;
  logitOffsets?: number[];
  labelSmoothing?: number[];
}

/** mean_i -sum_j T_ij log softmax(z_i + offsets)_j, T = lam q(a) + (1-lam) q(b), q(y) = (1-eps_y) 1_y + eps_y / C. */
function referenceLoss(c: LossCase): number {
  const C = c.numClasses, B = c.labelsA.length, lam = c.lam ?? 1;
  const labelsB = c.labelsB ?? c.labelsA;
  let total = 0;
  for (let i = 0; i < B; i++) {
    const z = c.logits.slice(i * C, (i + 1) * C).map((v, j) => v + (c.logitOffsets?.[j] ?? 0));
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
    const q = (y: number, j: number) => {
      const eps = c.labelSmoothing?.[y] ?? 0;
      return (j === y ? 1 - eps : 0) + eps / C;
    };
    for (let j = 0; j < C; j++) {
      const t = lam * q(c.labelsA[i], j) + (1 - lam) * q(labelsB[i], j);
      total -= t * (z[j] - lse);
    }
  }
  return total / B;
}

function nativeLoss(c: LossCase): number {
  return native()._computeLoss({
    ...c,
    logits: Float32Array.from(c.logits),
    labelsA: Int32Array.from(c.labelsA),
    labelsB: c.labelsB && Int32Array.from(c.labelsB),
  });
}

// Fixed inputs: 5 samples, 4 classes (values chosen by hand, not random).
const logits = [
  2.0, -1.0, 0.5, 0.0,
  -0.3, 1.7, 0.2, -2.2,
  0.0, 0.0, 0.0, 0.0,
  5.0, 4.0, -3.0, 1.0,
  -1.5, 0.25, 3.0, 0.75,
];
const labelsA = [0, 1, 2, 3, 2];
const labelsB = [3, 1, 0, 2, 1];
const base = { logits, numClasses: 4, labelsA };

describe('loss on fixed inputs vs TypeScript reference', () => {
  const cases: [string, LossCase][] = [
    ['plain cross-entropy', base],
    ['mixup lam 0.3', { ...base, labelsB, lam: 0.3 }],
    ['label-aware smoothing', { ...base, labelSmoothing: [0.4, 0.3, 0.1, 0.0] }],
    ['logit offsets (balanced softmax)', { ...base, logitOffsets: [Math.log(0.6), Math.log(0.25), Math.log(0.1), Math.log(0.05)] }],
    ['all together', { ...base, labelsB, lam: 0.8, labelSmoothing: [0.2, 0.1, 0.05, 0.0], logitOffsets: [0.3, -0.2, 0.1, -1.0] }],
  ];
  it.each(cases)('%s', (_name, c) => {
    const want = referenceLoss(c);
    expect(nativeLoss(c)).toBeCloseTo(want, 5);
  });

  it('hand-computed value for one sample', () => {
    // logits [0, 0], label 0: CE = log 2; with eps_0 = 0.5: T = [0.75, 0.25], loss still log 2.
    expect(nativeLoss({ logits: [0, 0], numClasses: 2, labelsA: [0] })).toBeCloseTo(Math.LN2, 6);
    // logits [ln 3, 0] -> p = [0.75, 0.25]; label 1: -ln 0.25
    expect(nativeLoss({ logits: [Math.log(3), 0], numClasses: 2, labelsA: [1] })).toBeCloseTo(Math.log(4), 6);
    // mixup lam 0.5 of labels 0 and 1 on the same logits: 0.5(-ln .75) + 0.5(-ln .25)
    expect(nativeLoss({ logits: [Math.log(3), 0], numClasses: 2, labelsA: [0], labelsB: [1], lam: 0.5 })).toBeCloseTo(
      0.5 * -Math.log(0.75) + 0.5 * -Math.log(0.25), 6);
  });

  it('rejects a label out of range', () => {
    expect(() => nativeLoss({ logits: [0, 0], numClasses: 2, labelsA: [2] })).toThrow(RangeError);
  });
});

describe('trainEpoch reports the same loss', () => {
  it('loss of a step (lr 0, BatchNorm eval) equals the reference on the logits of evaluate()', async () => {
    const ds = new Dataset(randomTask({ n: 8, numClasses: 4, size: 8, channels: 1, seed: 11 }));
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 11 });
    const smoothing = [0.3, 0.2, 0.1, 0];
    const offsets = [0.5, 0, -0.5, -1];
    const ev = await model.evaluate(ds, { logits: true });
    const res = await model.trainEpoch(ds, range(8), {
      lr: 0, batchSize: 8, bnMode: 'eval', labelSmoothing: smoothing, logitOffsets: offsets,
    });
    const labels = Array.from(randomTask({ n: 8, numClasses: 4, size: 8, channels: 1, seed: 11 }).labels);
    const want = referenceLoss({ logits: Array.from(ev.logits!), numClasses: 4, labelsA: labels, labelSmoothing: smoothing, logitOffsets: offsets });
    expect(res.losses.length).toBe(1);
    expect(res.losses[0]).toBeCloseTo(want, 4);
  });
});

/** GML reference: q = softmax(z + log n); p_i = clamp(q_{i,y_i}); m_c = mean p over class c; ((mean_c (-log m_c)^p))^(1/p). */
function referenceGml(logits: number[], C: number, labels: number[], counts: number[], power = 1): number {
  const B = labels.length;
  const sums = new Array(C).fill(0), cnt = new Array(C).fill(0);
  for (let i = 0; i < B; i++) {
    const z = logits.slice(i * C, (i + 1) * C).map((v, j) => v + Math.log(counts[j]));
    const m = Math.max(...z);
    const den = z.reduce((s, v) => s + Math.exp(v - m), 0);
    const p = Math.min(1, Math.max(1e-5, Math.exp(z[labels[i]] - m) / den));
    sums[labels[i]] += p;
    cnt[labels[i]] += 1;
  }
  const terms: number[] = [];
  for (let c = 0; c < C; c++) if (cnt[c] > 0) terms.push((-Math.log(sums[c] / cnt[c])) ** power);
  return (terms.reduce((a, b) => a + b, 0) / terms.length) ** (1 / power);
}

describe('GML loss', () => {
  const counts = [500, 100, 20, 5];
  const offsets = counts.map(Math.log);
  it.each([1, 2])('equals the reference (p = %d), classes absent from the batch skipped', (power) => {
    // labels use classes 0, 1, 2 only: class 3 is absent and must not count
    const labels = [0, 1, 2, 0, 2];
    const got = native()._computeLoss({ logits: Float32Array.from(logits), numClasses: 4, labelsA: Int32Array.from(labels), logitOffsets: offsets, loss: 'gml', gmlPower: power });
    expect(got).toBeCloseTo(referenceGml(logits, 4, labels, counts, power), 5);
  });
  it('differs from per-sample cross-entropy (it averages per class first)', () => {
    const labels = [0, 0, 0, 0, 3];
    const gml = native()._computeLoss({ logits: Float32Array.from(logits), numClasses: 4, labelsA: Int32Array.from(labels), logitOffsets: offsets, loss: 'gml' });
    const ce = nativeLoss({ logits, numClasses: 4, labelsA: labels, logitOffsets: offsets });
    expect(Math.abs(gml - ce)).toBeGreaterThan(1e-3);
  });
  it('trainEpoch refuses GML with mixup or label smoothing', () => {
    const ds = new Dataset(randomTask({ n: 4, numClasses: 4, size: 8, channels: 1 }));
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1 });
    expect(() => model.trainEpoch(ds, range(4), { lr: 0.1, loss: 'gml', logitOffsets: offsets, mixupAlpha: 0.2 })).toThrow(/gml.*mixup/);
    expect(() => model.trainEpoch(ds, range(4), { lr: 0.1, loss: 'gml', labelSmoothing: [0, 0, 0, 0] })).toThrow(/gml.*labelSmoothing/);
  });
});
