// End-to-end learning and reproducibility on a generated task.
import { describe, expect, it } from 'vitest';
import { Dataset, Model } from '../../src/index.js';
import { Rng } from '../../src/sampling/rng.js';
import { quadrantTask, range } from '../helpers/synthetic.js';

describe('learning', () => {
  it('a small CIFAR ResNet learns a 4-class image task to > 90% train accuracy', async () => {
    const src = quadrantTask({ n: 256, numClasses: 4, size: 16, seed: 1 });
    const ds = new Dataset(src);
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 1 });
    model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
    const rng = new Rng(1);
    const epochs = 6;
    const losses: number[] = [];
    for (let e = 0; e < epochs; e++) {
      const order = rng.permutation(src.n);
      const steps = Math.ceil(src.n / 32);
      // cosine over all steps
      const lrs = Float32Array.from({ length: steps }, (_, s) => 0.05 * 0.5 * (1 + Math.cos((Math.PI * (e * steps + s)) / (epochs * steps))));
      const r = await model.trainEpoch(ds, order, { lr: lrs, batchSize: 32, normalize: { mean: [0.3], std: [0.3] } });
      losses.push(r.losses.reduce((a, b) => a + b, 0) / r.losses.length);
    }
    const ev = await model.evaluate(ds, { normalize: { mean: [0.3], std: [0.3] } });
    const acc = ev.preds.reduce((s, p, i) => s + (p === src.labels[i] ? 1 : 0), 0) / src.n;
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    expect(acc).toBeGreaterThan(0.9);
  });
});

describe('reproducibility', () => {
  async function run(seed: number) {
    const ds = new Dataset(quadrantTask({ n: 64, numClasses: 4, size: 16, seed: 2 }));
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed });
    model.setOptimizer({});
    const out: number[] = [];
    for (let e = 0; e < 2; e++) {
      const r = await model.trainEpoch(ds, range(64), { lr: 0.05, batchSize: 16, cropPadding: 2, hflip: true, mixupAlpha: 0.4 });
      out.push(...r.losses);
    }
    return { losses: out, state: model.stateDict() };
  }

  it('same seed, same data: same losses and weights (with crop, flip and mixup)', async () => {
    const a = await run(42), b = await run(42);
    expect(a.losses).toEqual(b.losses);
    for (let i = 0; i < a.state.length; i++) {
      expect(Buffer.from(a.state[i].data.buffer).equals(Buffer.from(b.state[i].data.buffer)), a.state[i].name).toBe(true);
    }
  });

  it('a different seed gives different losses', async () => {
    const a = await run(42), c = await run(43);
    expect(a.losses).not.toEqual(c.losses);
  });
});
