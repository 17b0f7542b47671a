/**
 * Vision Transformers in the native core without Python: the architecture table, image-size rules,
 * training (loss falls on a small learnable set), which parameters a classifier-only optimizer moves,
 * LWS on `heads.head`, foldBatchNorm as the unfolded function, strict loading with the MLP names of
 * torchvision before 0.13. Parity with torchvision itself: vit-torchvision.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { gridTask } from '../../src/data/synthetic.js';
import { Dataset } from '../../src/dataset.js';
import { ARCHS, Model, renameLegacyViTKeys } from '../../src/model.js';
import { native } from '../../src/native.js';
import type { StateDict } from '../../src/state-dict.js';

const VITS = ['vit_b_16', 'vit_b_32', 'vit_l_16', 'vit_s_p4', 'vit_t_p4', 'vit_mini_p4'];
const norm = { mean: [0.3], std: [0.3] };
const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
const same = (a: StateDict[number], b: StateDict[number]) =>
  Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

describe('ViT architectures', () => {
  it('the native table and ARCHS list the same ViTs', () => {
    const names = native().archNames();
    expect(names.filter((n) => n.startsWith('vit_'))).toEqual(VITS);
    expect(ARCHS.filter((n) => n.startsWith('vit_'))).toEqual(VITS);
    expect([...ARCHS]).toEqual(names);
  });

  it.each([
    // arch, parameters with 10 classes (torchvision 0.14's vit_b_32(num_classes=10): 87,462,922), feature dim, default size
    ['vit_b_32', 87_462_922, 768, 224],
    ['vit_t_p4', 5_362_762, 192, 32],
    ['vit_mini_p4', 1_205_898, 128, 32],
  ] as const)('%s: torchvision-shaped state, size defaults', (arch, params, dim, size) => {
    using m = new Model({ arch, numClasses: 10 });
    expect(m.info).toMatchObject({ arch, numParameters: params, featureDim: dim, imageSize: size });
    const names = m.stateDict().map((e) => e.name);
    expect(names.slice(0, 5)).toEqual(['class_token', 'conv_proj.weight', 'conv_proj.bias', 'encoder.pos_embedding', 'encoder.layers.encoder_layer_0.ln_1.weight']);
    expect(names.slice(-4)).toEqual(['encoder.ln.weight', 'encoder.ln.bias', 'heads.head.weight', 'heads.head.bias']);
  });

  it('vit_b_16 with 1000 classes has torchvision\'s 86,567,656 parameters', () => {
    using m = new Model({ arch: 'vit_b_16', numClasses: 1000 });
    expect(m.info.numParameters).toBe(86_567_656);
  });

  it('image size: a multiple of the patch, and datasets must match it', async () => {
    expect(() => new Model({ arch: 'vit_b_16', numClasses: 2, imageSize: 100 })).toThrow(
      'Model: options.imageSize: vit_b_16 needs a multiple of its patch size 16, got 100');
    using m = new Model({ arch: 'vit_mini_p4', numClasses: 4, inChannels: 1 });
    using d = Dataset.fromImageSet(gridTask({ n: 8, numClasses: 4, size: 28 }));
    expect(() => m.evaluate(d)).toThrow('Model.evaluate: dataset images are 28x28, the model expects imageSize = 32');
  });
});

describe('ViT training', () => {
  it('vit_mini_p4 learns a small synthetic set: the loss falls', async () => {
    // 16x16 images (4x4 patches + the class token: 17 tokens) keep it quick on two cores. Plain SGD
    // on a transformer from scratch needs a gentle start: one epoch of linear warmup, then cosine.
    const set = gridTask({ n: 64, numClasses: 4, size: 16, seed: 1 });
    using d = Dataset.fromImageSet(set);
    using m = new Model({ arch: 'vit_mini_p4', numClasses: 4, inChannels: 1, imageSize: 16, seed: 3 });
    m.setOptimizer({ weightDecay: 0 });
    const epochs = 8, steps = 8, peak = 0.01;
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const losses: number[] = [];
    let firstStep = 0;
    for (let e = 0; e < epochs; e++) {
      const lr = Float32Array.from({ length: steps }, (_, i) => {
        const t = e * steps + i;
        return t < steps ? (peak * (t + 1)) / steps : peak * 0.5 * (1 + Math.cos((Math.PI * (t - steps)) / ((epochs - 1) * steps)));
      });
      const r = await m.trainEpoch(d, all(64), { lr, batchSize: 8, normalize: norm });
      if (e === 0) firstStep = r.losses[0];
      losses.push(mean(r.losses));
    }
    console.log(`vit_mini_p4 mean loss per epoch: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    expect(firstStep).toBeCloseTo(Math.log(4), 4); // the zero-initialised head: uniform logits
    expect(losses[epochs - 1]).toBeLessThan(0.6 * losses[0]);
    const ev = await m.evaluate(d, { normalize: norm });
    const acc = ev.preds.reduce((s, p, i) => s + (p === set.labels[i] ? 1 : 0), 0) / 64;
    expect(acc).toBeGreaterThan(0.5);
  }, 120_000);

  it("trainable 'classifier' moves heads.head only; LWS is heads.head.lws_scale, exported folded", async () => {
    using d = Dataset.fromImageSet(gridTask({ n: 32, numClasses: 4, size: 32, channels: 3, seed: 3 }));
    using m = new Model({ arch: 'vit_mini_p4', numClasses: 4, seed: 4 });
    const before = m.stateDict();
    m.setOptimizer({ trainable: 'classifier', lws: true });
    await m.trainEpoch(d, all(32), { lr: 0.1, batchSize: 16 });
    expect(m.gradients().map((e) => e.name)).toEqual(['heads.head.weight', 'heads.head.bias', 'heads.head.lws_scale']);
    const after = m.stateDict();
    expect(after.map((e) => e.name)).toEqual(before.map((e) => e.name)); // the scale is folded into heads.head
    const moved = after.filter((e, i) => !same(e, before[i])).map((e) => e.name);
    expect(moved).toEqual(['heads.head.weight', 'heads.head.bias']);
  }, 60_000);

  it('foldBatchNorm on a ViT (no BatchNorm) gives the unfolded logits', async () => {
    using d = Dataset.fromImageSet(gridTask({ n: 8, numClasses: 4, size: 32, channels: 3, seed: 5 }));
    using m = new Model({ arch: 'vit_mini_p4', numClasses: 4, seed: 6 });
    await m.trainEpoch(d, all(8), { lr: 0.1, batchSize: 8 });
    const a = await m.evaluate(d, { logits: true });
    const b = await m.evaluate(d, { logits: true, foldBatchNorm: true });
    expect(Math.max(...a.logits!.map((v) => Math.abs(v)))).toBeGreaterThan(0);
    expect(b.logits).toEqual(a.logits);
  }, 60_000);
});

describe('ViT state dicts', () => {
  it('loads the pre-0.13 MLP names (mlp.linear_1 / mlp.linear_2) as mlp.0 / mlp.3', () => {
    using a = new Model({ arch: 'vit_mini_p4', numClasses: 3, seed: 1 });
    using b = new Model({ arch: 'vit_mini_p4', numClasses: 3, seed: 2 });
    const state = a.stateDict();
    const legacy = state.map((e) => ({ ...e, name: e.name.replace('.mlp.0.', '.mlp.linear_1.').replace('.mlp.3.', '.mlp.linear_2.') }));
    expect(renameLegacyViTKeys(legacy).map((e) => e.name)).toEqual(state.map((e) => e.name));
    b.loadStateDict(legacy);
    const got = b.stateDict();
    expect(got.filter((e, i) => !same(e, state[i]))).toEqual([]);
  });

  it('strict loading names what does not match', () => {
    using m = new Model({ arch: 'vit_mini_p4', numClasses: 3 });
    const state = m.stateDict().filter((e) => e.name !== 'encoder.pos_embedding');
    state[0] = { ...state[0], name: 'cls_token' };
    expect(() => m.loadStateDict(state)).toThrow(
      "state does not match vit_mini_p4 (3 problem(s)):\n  unexpected key 'cls_token'\n  missing key 'class_token'\n  missing key 'encoder.pos_embedding'");
    using r = new Model({ arch: 'resnet8', numClasses: 3 });
    expect(() => r.loadStateDict(m.stateDict())).toThrow(/does not match resnet8/);
  });
});
