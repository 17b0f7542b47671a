// One and two SGD steps (momentum, weight decay, nesterov) equal the update computed here in float64
// from the exported weights and gradients; trainable parts and BatchNorm modes behave as documented.
import { describe, expect, it } from 'vitest';
import { Dataset, Model, type StateDict } from '../../src/index.js';
import { randomTask, range } from '../helpers/synthetic.js';

const byName = (sd: StateDict) => new Map(sd.map((e) => [e.name, e]));

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-3 + Math.abs(want[i])));
  }
  return worst;
}

function setup(seed = 3) {
  const ds = new Dataset(randomTask({ n: 6, numClasses: 3, size: 8, channels: 2, seed }));
  const model = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 2, seed });
  return { ds, model, idx: range(6) };
}

describe.each([false, true])('SGD step by hand (nesterov %s)', (nesterov) => {
  it('two steps match w -= lr * d, d from momentum buffer and weight decay', async () => {
    const { ds, model, idx } = setup();
    const momentum = 0.9, wd = 0.01, lrs = [0.1, 0.05];
    model.setOptimizer({ momentum, weightDecay: wd, nesterov });
    let w = byName(model.stateDict());
    const buf = new Map<string, Float64Array>();
    let checked = 0;
    for (const lr of lrs) {
      // bnMode 'eval' keeps the forward free of batch statistics; the update rule is what is checked.
      await model.trainEpoch(ds, idx, { lr, batchSize: 6, bnMode: 'eval' });
      const grads = model.gradients();
      const next = byName(model.stateDict());
      expect(grads.length).toBeGreaterThan(0);
      for (const g of grads) {
        const w0 = w.get(g.name)!.data as Float32Array;
        const gd = g.data as Float32Array;
        let b = buf.get(g.name);
        const first = !b;
        b ??= new Float64Array(gd.length);
        const want = new Float64Array(gd.length);
        for (let i = 0; i < gd.length; i++) {
          const dp = gd[i] + wd * w0[i];
          b[i] = first ? dp : momentum * b[i] + dp;
          const step = nesterov ? dp + momentum * b[i] : b[i];
          want[i] = w0[i] - lr * step;
        }
        buf.set(g.name, b);
        expect(maxRelErr(next.get(g.name)!.data as Float32Array, want), g.name).toBeLessThan(1e-4);
        checked++;
      }
      w = next;
    }
    // every parameter of resnet8 is trained and checked in both steps
    expect(checked).toBe(2 * model.stateDict().filter((e) => !/running_|num_batches/.test(e.name)).length);
    model.dispose();
    ds.dispose();
  });
});

describe('what trains', () => {
  it("trainable 'classifier' changes only fc; BatchNorm 'eval' leaves running stats alone", async () => {
    const { ds, model, idx } = setup(5);
    model.setOptimizer({ trainable: 'classifier' });
    const before = byName(model.stateDict());
    await model.trainEpoch(ds, idx, { lr: 0.5, batchSize: 3, bnMode: 'eval' });
    expect(model.gradients().map((g) => g.name)).toEqual(['fc.weight', 'fc.bias']);
    for (const e of model.stateDict()) {
      const same = Buffer.from(e.data.buffer).equals(Buffer.from(before.get(e.name)!.data.buffer));
      expect(same, e.name).toBe(!e.name.startsWith('fc.'));
    }
  });

  it("trainable 'classifier' with BatchNorm 'train' re-estimates BN statistics (shift BN) but keeps BN weights", async () => {
    const { ds, model, idx } = setup(6);
    model.setOptimizer({ trainable: 'classifier' });
    const before = byName(model.stateDict());
    await model.trainEpoch(ds, idx, { lr: 0.5, batchSize: 3, bnMode: 'train' });
    const after = byName(model.stateDict());
    const changed = (name: string) => !Buffer.from(after.get(name)!.data.buffer).equals(Buffer.from(before.get(name)!.data.buffer));
    expect(changed('bn1.running_mean')).toBe(true);
    expect(after.get('bn1.num_batches_tracked')!.data[0]).toBe(2n);
    expect(changed('bn1.weight')).toBe(false);
    expect(changed('layer1.0.conv1.weight')).toBe(false);
    expect(changed('fc.weight')).toBe(true);
  });

  it("trainable 'backbone' keeps fc fixed and trains the rest", async () => {
    const { ds, model, idx } = setup(7);
    model.setOptimizer({ trainable: 'backbone' });
    const before = byName(model.stateDict());
    await model.trainEpoch(ds, idx, { lr: 0.5, batchSize: 6 });
    const after = byName(model.stateDict());
    const same = (name: string) => Buffer.from(after.get(name)!.data.buffer).equals(Buffer.from(before.get(name)!.data.buffer));
    expect(same('fc.weight')).toBe(true);
    expect(same('fc.bias')).toBe(true);
    expect(same('conv1.weight')).toBe(false);
    expect(model.gradients().some((g) => g.name.startsWith('fc.'))).toBe(false);
  });

  it('lr 0 leaves every parameter bit-identical', async () => {
    const { ds, model, idx } = setup(8);
    model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
    const before = byName(model.stateDict());
    await model.trainEpoch(ds, idx, { lr: 0, batchSize: 6, bnMode: 'eval' });
    for (const e of model.stateDict()) {
      expect(Buffer.from(e.data.buffer).equals(Buffer.from(before.get(e.name)!.data.buffer)), e.name).toBe(true);
    }
  });
});
