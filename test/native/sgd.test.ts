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

  // the official BTM Places-LT recipe: only the last residual stage and fc train; every module before it
  // stays in eval mode, so its BatchNorm running statistics do not move either
  it.each([
    ['resnet8', 'layer3.', 8, 3],
    ['resnet18', 'layer4.', 32, 3],
  ] as const)("trainable 'last-block' on %s trains %s and fc only, the BatchNorm buffers before it unchanged", async (arch, stage, size, channels) => {
    const ds = new Dataset(randomTask({ n: 8, numClasses: 3, size, channels, seed: 21 }));
    const model = new Model({ arch, numClasses: 3, inChannels: channels, seed: 21 });
    model.setOptimizer({ trainable: 'last-block', momentum: 0.9, weightDecay: 5e-4 });
    const before = byName(model.stateDict());
    await model.trainEpoch(ds, range(8), { lr: 0.5, batchSize: 4 });
    const after = model.stateDict();
    const inside = (name: string) => name.startsWith(stage) || name.startsWith('fc.');
    const same = (name: string) => Buffer.from(byName(after).get(name)!.data.buffer).equals(Buffer.from(before.get(name)!.data.buffer));
    const params = new Set(model.gradients().map((g) => g.name));
    // the trained set is exactly the last stage's parameters and fc's
    expect([...params].every(inside)).toBe(true);
    expect(params.has('fc.weight') && params.has(`${stage}0.conv1.weight`) && params.has(`${stage}0.bn2.weight`)).toBe(true);
    let moved = 0, kept = 0;
    for (const e of after) {
      if (!inside(e.name)) {
        expect(same(e.name), `${e.name} outside ${stage} moved`).toBe(true);
        kept++;
      } else if (!e.name.endsWith('num_batches_tracked')) {
        // every weight and BatchNorm statistic of the last stage and fc moved (train-mode BatchNorm there)
        expect(same(e.name), `${e.name} inside ${stage} did not move`).toBe(false);
        moved++;
      }
      // two train-mode steps counted inside, none outside (checked bit for bit above)
      if (inside(e.name) && e.name.endsWith('num_batches_tracked')) expect(Number(e.data[0])).toBe(2);
    }
    expect(kept).toBeGreaterThan(10);
    expect(moved).toBeGreaterThan(10);
    model.dispose();
  });

  it("trainable 'last-block': a bad value, and an architecture without a residual stage, get a clear error", () => {
    const vit = new Model({ arch: 'vit_mini_p4', numClasses: 3, inChannels: 1, imageSize: 16, seed: 1 });
    expect(() => vit.setOptimizer({ trainable: 'last-block' })).toThrow("Model.setOptimizer: trainable 'last-block' needs a ResNet (its last residual stage); vit_mini_p4 has none");
    vit.dispose();
    const { model } = setup(2);
    expect(() => model.setOptimizer({ trainable: 'last-stage' as never })).toThrow(/options\.trainable must be one of 'all', 'classifier', 'backbone', 'peft', 'last-block', got 'last-stage'/);
    model.dispose();
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

describe('resuming', () => {
  it('weights + optimizerState + manualSeed reproduce an uninterrupted run exactly', async () => {
    const src = randomTask({ n: 16, numClasses: 3, size: 8, channels: 2, seed: 9 });
    const opts = { lr: 0.05, batchSize: 8, cropPadding: 1, hflip: true, mixupAlpha: 0.3 };
    const epoch = async (m: Model, ds: Dataset, e: number) => {
      m.manualSeed(1000 + e);
      return (await m.trainEpoch(ds, range(16), opts)).losses;
    };
    // uninterrupted: 3 epochs
    const ds = new Dataset(src);
    const a = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 2, seed: 1 });
    a.setOptimizer({ momentum: 0.9, weightDecay: 5e-4, nesterov: true });
    const lossesA: number[] = [];
    for (let e = 0; e < 3; e++) lossesA.push(...(await epoch(a, ds, e)));
    // interrupted after epoch 1: checkpoint, new process-like model, resume
    const b = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 2, seed: 1 });
    b.setOptimizer({ momentum: 0.9, weightDecay: 5e-4, nesterov: true });
    const lossesB: number[] = [...(await epoch(b, ds, 0))];
    const weights = b.stateDict(), momentum = b.optimizerState();
    expect(momentum.length).toBe(a.optimizerState().length);
    expect(momentum[0].name).toMatch(/\.momentum_buffer$/);
    b.dispose();
    const c = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 2, seed: 77 });
    c.setOptimizer({ momentum: 0.9, weightDecay: 5e-4, nesterov: true });
    c.loadStateDict(weights);
    c.loadOptimizerState(momentum);
    for (let e = 1; e < 3; e++) lossesB.push(...(await epoch(c, ds, e)));
    expect(lossesB).toEqual(lossesA);
    const sa = a.stateDict(), sc = c.stateDict();
    for (let i = 0; i < sa.length; i++) expect(Buffer.from(sc[i].data.buffer).equals(Buffer.from(sa[i].data.buffer)), sa[i].name).toBe(true);
  });

  it('loadOptimizerState is strict about names and shapes', () => {
    const m = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 2 });
    m.setOptimizer({ trainable: 'classifier' });
    expect(() => m.loadOptimizerState([{ name: 'fc.weight.momentum_buffer', shape: [3, 64], dtype: 'float32', data: new Float32Array(192) }])).toThrow(/missing key 'fc\.bias\.momentum_buffer'/);
    expect(() => m.loadOptimizerState([{ name: 'conv1.weight.momentum_buffer', shape: [16, 2, 3, 3], dtype: 'float32', data: new Float32Array(288) }])).toThrow(/unexpected key 'conv1\.weight\.momentum_buffer'/);
  });
});

describe('learnable weight scaling (LWS)', () => {
  it('trains a per-class logit scale; stateDict exports it folded into fc so logits are unchanged', async () => {
    const { ds, model, idx } = setup(12);
    model.setOptimizer({ trainable: 'classifier', lws: true, momentum: 0, weightDecay: 0 });
    const before = byName(model.stateDict());
    await model.trainEpoch(ds, idx, { lr: 1.0, batchSize: 6, bnMode: 'eval' });
    expect(model.gradients().map((g) => g.name)).toEqual(['fc.weight', 'fc.bias', 'fc.lws_scale']);
    const logits = (await model.evaluate(ds, { logits: true })).logits!;
    const exported = model.stateDict();
    // a fresh model with the exported (folded) weights computes the same logits
    const other = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 2, seed: 99 });
    other.loadStateDict(exported);
    const logits2 = (await other.evaluate(ds, { logits: true })).logits!;
    for (let i = 0; i < logits.length; i++) expect(logits2[i]).toBeCloseTo(logits[i], 5);
    // the backbone did not move; fc did
    expect(Buffer.from(byName(exported).get('conv1.weight')!.data.buffer).equals(Buffer.from(before.get('conv1.weight')!.data.buffer))).toBe(true);
    // folding for good (setOptimizer without lws) keeps the function too
    model.setOptimizer({ trainable: 'all' });
    const logits3 = (await model.evaluate(ds, { logits: true })).logits!;
    for (let i = 0; i < logits.length; i++) expect(logits3[i]).toBeCloseTo(logits[i], 5);
  });
});
