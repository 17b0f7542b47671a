// Faster inference and training layouts that must compute the same function: channels-last memory
// format (on CPU too) and BatchNorm folded into the convolutions for evaluation.
import { describe, expect, it } from 'vitest';
import { Dataset, Model, type Arch } from '../../src/index.js';
import { bytesOf, quadrantTask, range } from '../helpers/synthetic.js';

const norm = { mean: [0.3], std: [0.3] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A model with trained weights and moved BatchNorm statistics, so folding is not trivial. */
async function trained(arch: Arch, ds: Dataset, n: number) {
  const m = new Model({ arch, numClasses: 4, inChannels: 1, seed: 3 });
  await m.trainEpoch(ds, range(n), { lr: 0.01, batchSize: 16, normalize: norm });
  return m;
}

describe('channels-last on CPU', () => {
  const src = quadrantTask({ n: 64, numClasses: 4, size: 16, seed: 2 });

  it('gives the same logits as NCHW', async () => {
    const ds = new Dataset(src);
    for (const arch of ['resnet20', 'resnet18'] as const) {
      const a = new Model({ arch, numClasses: 4, inChannels: 1, seed: 1 });
      const b = new Model({ arch, numClasses: 4, inChannels: 1, seed: 1 });
      b.setPerformance({ channelsLast: true });
      const ea = await a.evaluate(ds, { logits: true, normalize: norm });
      const eb = await b.evaluate(ds, { logits: true, normalize: norm });
      expect(maxAbsDiff(ea.logits!, eb.logits!), arch).toBeLessThan(1e-4);
      a.dispose();
      b.dispose();
    }
    ds.dispose();
  });

  // resnet50 (bottlenecks, strided 1x1 shortcuts): on libtorch 2.x, whose oneDNN 3.x divides by zero creating
  // some 1x1 convolution primitives (native/compat.h; Debian's PyTorch 2.6 dies the same way), it trains with
  // oneDNN's convolutions off (native/core/onednn_off.h) and stays NCHW, so there both sides are NCHW: the test
  // then checks that it trains at all, where the process used to die.
  it.each(['resnet20', 'resnet50'] as const)('%s: training steps agree with NCHW (losses and weights within float tolerance), and the state dict stays NCHW-shaped', async (arch) => {
    const ds = new Dataset(src);
    const a = new Model({ arch, numClasses: 4, inChannels: 1, seed: 1 });
    const b = new Model({ arch, numClasses: 4, inChannels: 1, seed: 1 });
    b.setPerformance({ channelsLast: true });
    // resnet50 one step: its steps here are violent (loss 1.6 -> 14 -> 69 at lr 0.05; BatchNorm over 1x1
    // maps of 16 images), so after the first the two layouts' float noise has grown to percents
    const n = arch === 'resnet50' ? 16 : 64;
    const opts = { lr: 0.05, batchSize: 16, normalize: norm, cropPadding: 2, hflip: true };
    const ra = await a.trainEpoch(ds, range(n), opts);
    const rb = await b.trainEpoch(ds, range(n), opts);
    // float reassociation in the NHWC kernels: differences of ~1e-6 per op, a few steps
    expect(maxAbsDiff(ra.losses, rb.losses)).toBeLessThan(1e-4);
    const sa = a.stateDict(), sb = b.stateDict();
    expect(sb.map((e) => [e.name, e.shape])).toEqual(sa.map((e) => [e.name, e.shape]));
    for (let i = 0; i < sa.length; i++) {
      if (sa[i].dtype !== 'float32') continue;
      expect(maxAbsDiff(sa[i].data as Float32Array, sb[i].data as Float32Array), sa[i].name).toBeLessThan(1e-4);
    }
    // a channels-last model loads an NCHW state dict and computes the same logits
    b.loadStateDict(sa);
    const ea = await a.evaluate(ds, { logits: true, normalize: norm });
    const eb = await b.evaluate(ds, { logits: true, normalize: norm });
    // relative to the largest logit (resnet50's reach thousands after its violent step)
    expect(maxAbsDiff(ea.logits!, eb.logits!) / ea.logits!.reduce((m, v) => Math.max(m, Math.abs(v)), 1)).toBeLessThan(1e-5);
    a.dispose();
    b.dispose();
    ds.dispose();
  });
});

describe('BatchNorm folded into the convolutions for evaluation', () => {
  const n = 64;
  const src = quadrantTask({ n, numClasses: 4, size: 16, seed: 5 });

  // resnet50 trains first (on libtorch 2.x with oneDNN's convolutions off, above)
  for (const arch of ['resnet20', 'resnet18', 'resnet50'] as const) {
    it(`${arch}: folded and unfolded logits, features and predictions agree; the state dict is untouched`, async () => {
      const ds = new Dataset(src);
      const m = await trained(arch, ds, n);
      const before = m.stateDict();
      const plain = await m.evaluate(ds, { logits: true, features: true, normalize: norm });
      const folded = await m.evaluate(ds, { logits: true, features: true, normalize: norm, foldBatchNorm: true });
      // relative to the largest magnitude: folding reassociates the BatchNorm arithmetic
      const rel = (a: Float32Array, b: Float32Array) => maxAbsDiff(a, b) / a.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expect(rel(plain.logits!, folded.logits!)).toBeLessThan(1e-4);
      expect(rel(plain.features!, folded.features!)).toBeLessThan(1e-4);
      expect(Array.from(folded.preds)).toEqual(Array.from(plain.preds));
      const after = m.stateDict();
      for (let i = 0; i < before.length; i++) expect(bytesOf(after[i].data).equals(bytesOf(before[i].data)), before[i].name).toBe(true);
      m.dispose();
      ds.dispose();
    });
  }

  it('the folded copy follows the weights: after more training, after loadStateDict, with channels-last', async () => {
    const ds = new Dataset(src);
    const m = await trained('resnet20', ds, n);
    const check = async (what: string) => {
      const plain = await m.evaluate(ds, { logits: true, normalize: norm });
      const folded = await m.evaluate(ds, { logits: true, normalize: norm, foldBatchNorm: true });
      expect(maxAbsDiff(plain.logits!, folded.logits!), what).toBeLessThan(1e-3);
      return folded.logits!;
    };
    const first = await check('trained');
    await m.trainEpoch(ds, range(n), { lr: 0.05, batchSize: 16, normalize: norm });
    const second = await check('after another epoch');
    expect(maxAbsDiff(first, second)).toBeGreaterThan(1e-3); // it really changed
    const other = new Model({ arch: 'resnet20', numClasses: 4, inChannels: 1, seed: 9 });
    m.loadStateDict(other.stateDict());
    await check('after loadStateDict');
    m.setPerformance({ channelsLast: true });
    await check('channels-last');
    await m.evaluate(ds, { bnMode: 'train', batchSize: 16, normalize: norm }); // BatchNorm statistics move
    await check('after a train-mode evaluation');
    m.dispose();
    other.dispose();
    ds.dispose();
  });

  it('foldBatchNorm needs bnMode eval', () => {
    const ds = new Dataset(src);
    const m = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1 });
    expect(() => m.evaluate(ds, { foldBatchNorm: true, bnMode: 'train', batchSize: 16 })).toThrow(/foldBatchNorm needs bnMode 'eval'/);
    expect(() => m.evaluate(ds, { foldBatchNorm: 'yes' as never })).toThrow(/foldBatchNorm must be a boolean/);
    m.dispose();
    ds.dispose();
  });
});
