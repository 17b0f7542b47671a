// Multi-label in the native core: Datasets with multi-hot targets (checked before libtorch sees them),
// BCE with logits and its logit-adjusted / class-balanced forms against a float64 TypeScript reference,
// mixup on multi-hot targets, and training on a multi-label set.
import { describe, expect, it } from 'vitest';
import { Dataset, Model } from '../../src/index.js';
import { MemberGroup } from '../../src/member-group.js';
import { multiHot } from '../../src/data/multilabel-list.js';
import { averagePrecision } from '../../src/metrics-multilabel.js';
import { native } from '../../src/native.js';
import { range } from '../helpers/synthetic.js';

/** n images 1 x 8 x 8: quadrant k is bright (200) when class k is in the image's label set, else dark. */
function quadrantSet(n: number, seed: number) {
  const labels: number[][] = [];
  const images = new Uint8Array(n * 64);
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = 0; i < n; i++) {
    let set: number[] = [];
    while (set.length === 0) set = [0, 1, 2, 3].filter(() => rand() < 0.4);
    labels.push(set);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const k = (y >> 2) * 2 + (x >> 2);
        images[i * 64 + y * 8 + x] = (set.includes(k) ? 200 : 20) + Math.floor(rand() * 30);
      }
    }
  }
  return { images, targets: multiHot(labels, 4), numClasses: 4, labels, n, channels: 1, height: 8, width: 8 };
}

interface BceCase {
  logits: number[];
  numClasses: number;
  targets: number[];
  logitOffsets?: number[];
  classWeights?: number[];
}

/** mean_{i,j} w_j [softplus(z_ij + o_j) - t_ij (z_ij + o_j)], in float64. */
function referenceBce(c: BceCase): number {
  const C = c.numClasses, B = c.logits.length / C;
  let total = 0;
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < C; j++) {
      const s = c.logits[i * C + j] + (c.logitOffsets?.[j] ?? 0);
      const softplus = Math.max(s, 0) + Math.log1p(Math.exp(-Math.abs(s)));
      total += (c.classWeights?.[j] ?? 1) * (softplus - c.targets[i * C + j] * s);
    }
  }
  return total / (B * C);
}

function nativeBce(c: BceCase): number {
  return native()._computeLoss({ ...c, loss: 'bce', logits: Float32Array.from(c.logits), targets: Float32Array.from(c.targets) });
}

// Fixed inputs: 4 samples, 3 classes (values chosen by hand), multi-hot and mixed targets.
const logits = [2.0, -1.0, 0.5, -0.3, 1.7, -2.2, 0.0, 0.0, 0.0, 5.0, -3.0, 1.0];
const multi = [1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1];
const mixed = multi.map((t, k) => 0.7 * t + 0.3 * [0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0][k]);

describe('BCE with logits on fixed inputs vs a float64 reference', () => {
  const base = { logits, numClasses: 3, targets: multi };
  const cases: [string, BceCase][] = [
    ['plain BCE', base],
    ['mixed (soft) targets', { ...base, targets: mixed }],
    ['logit offsets (logit-adjusted BCE)', { ...base, logitOffsets: [-0.4, 1.2, -2.0] }],
    ['class weights (class-balanced BCE)', { ...base, classWeights: [0.2, 1.1, 1.7] }],
    ['all together', { ...base, targets: mixed, logitOffsets: [0.3, -0.2, 1.0], classWeights: [0.5, 2, 0.5] }],
  ];
  it.each(cases)('%s', (_name, c) => {
    expect(nativeBce(c)).toBeCloseTo(referenceBce(c), 5);
  });

  it('hand-computed values', () => {
    // z = 0: log 2 per term whatever the target
    expect(nativeBce({ logits: [0, 0], numClasses: 2, targets: [1, 0] })).toBeCloseTo(Math.LN2, 6);
    // z = ln 3 (p = 0.75), t = 1: -ln 0.75
    expect(nativeBce({ logits: [Math.log(3)], numClasses: 1, targets: [1] })).toBeCloseTo(-Math.log(0.75), 6);
    // the same logit with offset -ln 3: z + o = 0 -> ln 2
    expect(nativeBce({ logits: [Math.log(3)], numClasses: 1, targets: [1], logitOffsets: [-Math.log(3)] })).toBeCloseTo(Math.LN2, 6);
  });

  it("single-label labels under loss 'bce': one-hot targets, mixed by lam", () => {
    const labelsA = [0, 2, 1, 1], labelsB = [1, 2, 0, 2], lam = 0.35;
    const onehot = (ys: number[]) => ys.flatMap((y) => [0, 1, 2].map((j) => (j === y ? 1 : 0)));
    const a = onehot(labelsA), b = onehot(labelsB);
    const want = referenceBce({ logits, numClasses: 3, targets: a.map((v, k) => lam * v + (1 - lam) * b[k]) });
    const got = native()._computeLoss({ loss: 'bce', logits: Float32Array.from(logits), numClasses: 3,
      labelsA: Int32Array.from(labelsA), labelsB: Int32Array.from(labelsB), lam });
    expect(got).toBeCloseTo(want, 5);
  });

  it('bad loss options are refused by name', () => {
    const f = (o: object) => () => native()._computeLoss({ logits: Float32Array.from(logits), numClasses: 3, ...o });
    expect(f({ loss: 'bce', targets: Float32Array.from(multi), labelSmoothing: [0.1, 0.1, 0.1] })).toThrow(/loss 'bce' does not take labelSmoothing/);
    expect(f({ labelsA: Int32Array.from([0, 1, 2, 0]), classWeights: [1, 1, 1] })).toThrow(/classWeights is for loss 'bce'/);
    expect(f({ loss: 'bce', targets: Float32Array.from(multi), classWeights: [1, -1, 1] })).toThrow(/classWeights/);
    expect(f({ loss: 'bce', targets: Float32Array.from(multi.map((v) => v * 2)) })).toThrow(/targets/);
    expect(f({ loss: 'bce', targets: Float32Array.from([1, 0]) })).toThrow(/targets/);
  });
});

describe('multi-label Dataset', () => {
  const set = quadrantSet(6, 1);

  it('holds multi-hot targets: numTargets, maxLabel', () => {
    const ds = new Dataset(set);
    expect(ds.multiLabel).toBe(true);
    expect(ds.numTargets).toBe(4);
    expect(ds.size).toBe(6);
    const single = new Dataset({ images: set.images, labels: new Int32Array(6), n: 6, channels: 1, height: 8, width: 8 });
    expect(single.multiLabel).toBe(false);
    expect(single.numTargets).toBe(0);
    ds.dispose();
    single.dispose();
  });

  it('bad targets are refused, naming the entry, sample and class', () => {
    const bad = set.targets.slice();
    bad[2 * 4 + 3] = 2;
    expect(() => new Dataset({ ...set, targets: bad })).toThrow(/targets\[11\] = 2 \(sample 2, class 3\) is not 0 or 1/);
    const empty = set.targets.slice();
    empty.fill(0, 4, 8);
    expect(() => new Dataset({ ...set, targets: empty })).toThrow(/sample 1 has an empty label set/);
    expect(() => new Dataset({ ...set, targets: set.targets.subarray(1) })).toThrow(/targets has 23 entries, expected n\*numClasses = 6\*4/);
    expect(() => new Dataset({ ...set, numClasses: 0 })).toThrow(/numClasses/);
    expect(() => new (native().Dataset)(set.images, set.targets, { n: 6, channels: 1, height: 8, width: 8 })).toThrow(/numClasses/);
  });

  it('trainEpoch refuses a loss other than bce, and a model of another width', async () => {
    const ds = new Dataset(set);
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1 });
    await expect(async () => model.trainEpoch(ds, range(6), { lr: 0.1, batchSize: 6 })).rejects.toThrow(/multi-label .* loss must be 'bce', got 'ce'/);
    await expect(async () => model.trainEpoch(ds, range(6), { lr: 0.1, batchSize: 6, loss: 'gml' })).rejects.toThrow(/loss must be 'bce', got 'gml'/);
    const wide = new Model({ arch: 'resnet8', numClasses: 5, inChannels: 1 });
    await expect(async () => wide.trainEpoch(ds, range(6), { lr: 0.1, batchSize: 6, loss: 'bce' })).rejects.toThrow(/targets over 4 classes, the model has numClasses = 5/);
    const narrow = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 1 });
    await expect(async () => narrow.evaluate(ds)).rejects.toThrow(/label 3, out of range for numClasses = 3/);
    for (const m of [model, wide, narrow]) m.dispose();
  });
});

describe('MORE with BCE on multi-label data', () => {
  /** base BCE(z_full) + c * mean_i w_i d_i, w_i = sum_j t_ij w_j / sum_j t_ij, d = l2 (mean squared) or KL. */
  function referenceMore(full: number[], general: number[], C: number, targets: number[], weights: number[], c: number, kind: 'l2' | 'kl') {
    const B = full.length / C;
    let d = 0;
    for (let i = 0; i < B; i++) {
      let tw = 0, ts = 0;
      for (let j = 0; j < C; j++) (tw += targets[i * C + j] * weights[j]), (ts += targets[i * C + j]);
      const zf = full.slice(i * C, (i + 1) * C), zg = general.slice(i * C, (i + 1) * C);
      let di = 0;
      if (kind === 'l2') {
        for (let j = 0; j < C; j++) di += (zf[j] - zg[j]) ** 2 / C;
      } else {
        const lse = (z: number[]) => { const m = Math.max(...z); return m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)); };
        const lf = lse(zf), lg = lse(zg);
        for (let j = 0; j < C; j++) di += Math.exp(zf[j] - lf) * ((zf[j] - lf) - (zg[j] - lg));
      }
      d += (tw / ts) * di;
    }
    d /= B;
    const base = referenceBce({ logits: full, numClasses: C, targets });
    return { base, discrepancy: d, total: base + c * d };
  }

  it.each(['l2', 'kl'] as const)('native MORE loss (%s) on multi-hot and mixed targets equals the reference', (kind) => {
    const general = logits.map((v, k) => v * 0.8 + ((k % 3) - 1) * 0.3);
    const weights = [2.1, 0.6, 0.3];
    for (const targets of [multi, mixed]) {
      const got = native()._computeMoreLoss({
        loss: 'bce', full: Float32Array.from(logits), general: Float32Array.from(general), numClasses: 3, targets: Float32Array.from(targets),
        more: { coefficient: 0.7, classWeights: weights, discrepancy: kind },
      });
      const want = referenceMore(logits, general, 3, targets, weights, 0.7, kind);
      expect(got.base).toBeCloseTo(want.base, 5);
      expect(got.discrepancy).toBeCloseTo(want.discrepancy, 5);
      expect(got.total).toBeCloseTo(want.total, 5);
    }
  });

  it('trainEpoch with MORE on a multi-label set: B = 0 at the first step, so the loss is the plain BCE', async () => {
    const set = quadrantSet(8, 6);
    const ds = new Dataset(set);
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 2 });
    model.setOptimizer({});
    const ev = await model.evaluate(ds, { logits: true });
    model.setLowRank({ rank: 2 });
    const res = await model.trainEpoch(ds, range(8), { lr: 0, batchSize: 8, bnMode: 'eval', loss: 'bce', more: { coefficient: 1, classWeights: [1, 2, 3, 4] } });
    expect(res.losses[0]).toBeCloseTo(referenceBce({ logits: Array.from(ev.logits!), numClasses: 4, targets: Array.from(set.targets) }), 4);
    const more = await model.trainEpoch(ds, range(8), { lr: 0.05, batchSize: 4, loss: 'bce', mixupAlpha: 0.5, more: { coefficient: 1, classWeights: [1, 2, 3, 4] } });
    for (const l of more.losses) expect(Number.isFinite(l)).toBe(true);
    model.dispose();
  });
});

describe('mixup on multi-hot targets', () => {
  const set = quadrantSet(10, 2);
  const row = (i: number) => Array.from(set.targets.subarray(i * 4, i * 4 + 4));

  it('without mixup a batch carries the rows of its indices, in order', () => {
    const ds = new Dataset(set);
    const idx = Int32Array.from([3, 1, 4, 9, 0, 7]);
    const batches = native()._batchTargets(ds.handle, idx, { batchSize: 4 });
    expect(batches.map((b) => b.lam)).toEqual([1, 1]);
    expect(Array.from(batches[0].targets)).toEqual([3, 1, 4, 9].flatMap(row));
    expect(Array.from(batches[1].targets)).toEqual([0, 7].flatMap(row));
  });

  it('with mixup each row is lam t_i + (1 - lam) t_j, the partners j a permutation of the batch', () => {
    const ds = new Dataset(set);
    const idx = range(10);
    for (const seed of [0, 1, 2]) {
      const [b] = native()._batchTargets(ds.handle, idx, { batchSize: 10, mixupAlpha: 1, seed });
      expect(b.lam).toBeGreaterThan(0);
      expect(b.lam).toBeLessThan(1);
      const partners: number[] = [];
      for (let i = 0; i < 10; i++) {
        const got = Array.from(b.targets.subarray(i * 4, i * 4 + 4));
        // the partners whose mix with row i gives this row (several when rows repeat)
        const fits = range(10).filter((j) => row(j).every((t, k) => Math.abs(b.lam * row(i)[k] + (1 - b.lam) * t - got[k]) < 1e-6));
        expect(fits.length).toBeGreaterThan(0);
        partners.push(fits[0]);
        // the mixed row is never a plain multi-hot row unless the partner's row equals row i
        if (!row(fits[0]).every((t, k) => t === row(i)[k])) expect(got.some((v) => v > 0 && v < 1)).toBe(true);
      }
      // the sum over the batch of each class's target is preserved by a permutation
      for (let k = 0; k < 4; k++) {
        const sum = Array.from({ length: 10 }, (_, i) => b.targets[i * 4 + k]).reduce((a, v) => a + v, 0);
        const want = Array.from({ length: 10 }, (_, i) => row(i)[k]).reduce((a, v) => a + v, 0);
        expect(sum).toBeCloseTo(want, 5);
      }
    }
  });
});

describe('training on a multi-label set', () => {
  it('trainEpoch reports the BCE of the logits evaluate() gives (lr 0, BatchNorm eval), and the top-class hit rate', async () => {
    const set = quadrantSet(8, 3);
    const ds = new Dataset(set);
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 5 });
    const offsets = [0.2, -0.1, 0.4, -1];
    const weights = [1.5, 0.5, 1, 2];
    const ev = await model.evaluate(ds, { logits: true });
    const res = await model.trainEpoch(ds, range(8), { lr: 0, batchSize: 8, bnMode: 'eval', loss: 'bce', logitOffsets: offsets, classWeights: weights });
    const z = Array.from(ev.logits!);
    expect(res.losses[0]).toBeCloseTo(referenceBce({ logits: z, numClasses: 4, targets: Array.from(set.targets), logitOffsets: offsets, classWeights: weights }), 4);
    let hits = 0;
    for (let i = 0; i < 8; i++) hits += set.targets[i * 4 + ev.preds[i]];
    expect(res.accs[0]).toBeCloseTo(hits / 8, 5);
    model.dispose();
  });

  it('learns the quadrant task (mAP on held-out images), alone and as group members', async () => {
    const train = new Dataset(quadrantSet(256, 4));
    const testSet = quadrantSet(128, 5);
    const test = new Dataset(testSet);
    const mAP = (z: Float32Array) => {
      let total = 0;
      for (let c = 0; c < 4; c++) {
        const scores = Array.from({ length: 128 }, (_, i) => z[i * 4 + c]);
        const pos = Array.from({ length: 128 }, (_, i) => testSet.targets[i * 4 + c]);
        total += averagePrecision(scores, pos);
      }
      return total / 4;
    };
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 1 });
    model.setOptimizer({});
    const before = mAP((await model.evaluate(test, { logits: true })).logits!);
    for (let e = 0; e < 6; e++) await model.trainEpoch(train, range(256), { lr: 0.05, batchSize: 32, loss: 'bce', mixupAlpha: 0.2 });
    const after = mAP((await model.evaluate(test, { logits: true })).logits!);
    expect(after).toBeGreaterThan(0.9);
    expect(after).toBeGreaterThan(before);

    const members = [0, 1].map((seed) => new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed }));
    for (const m of members) m.setOptimizer({});
    const group = new MemberGroup(members);
    const rs = await group.train(train, [range(64), range(64)], { lr: 0.05, batchSize: 32, loss: 'bce' });
    expect(rs).toHaveLength(2);
    for (const r of rs) for (const l of r.losses) expect(Number.isFinite(l)).toBe(true);
    await expect(async () => group.train(train, [range(64), range(64)], { lr: 0.05, batchSize: 32 })).rejects.toThrow(/loss must be 'bce'/);
    group.dispose();
    model.dispose();
  });
});
