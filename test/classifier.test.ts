/**
 * Classifier: images the model cannot take are refused naming both shapes (never silently read as
 * another number of images), evaluate refuses a checkpoint/data mismatch before any work, and
 * concurrent predict calls queue, batch and each get exactly their own results.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { saveCheckpoint, type ModelMeta } from '../src/checkpoint.js';
import { checkCompatible, Classifier, evaluate, loadModel } from '../src/classifier.js';
import { gridTask, noiseTask } from '../src/data/synthetic.js';
import { Dataset } from '../src/dataset.js';
import { Model } from '../src/model.js';

let dir: string;
let ckpt: string;
const META: ModelMeta = { arch: 'resnet8', numClasses: 4, inChannels: 1, imageSize: 16, normalize: { mean: [0.3], std: [0.25] } };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-classifier-'));
  ckpt = path.join(dir, 'm.safetensors');
  using model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 3 });
  // A train-mode pass gives BatchNorm non-trivial running statistics, so logits differ per image.
  using data = Dataset.fromImageSet(noiseTask({ n: 64, numClasses: 4, size: 16, channels: 1, seed: 1 }));
  await model.evaluate(data, { bnMode: 'train', normalize: META.normalize });
  await saveCheckpoint(ckpt, model, META, { stage: 'pretrain' });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('predict refuses images of another shape', () => {
  it('an ImageSet of another image size or channel count, naming both shapes', async () => {
    using c = await loadModel(ckpt);
    const big = gridTask({ n: 8, size: 32, channels: 1, numClasses: 4 });
    await expect(c.predict(big)).rejects.toThrow(`${ckpt}: the model expects 16x16x1 images (HxWxC), but synthetic(seed 0) has 32x32x1 images (image size differ)`);
    const rgb = gridTask({ n: 2, size: 16, channels: 3, numClasses: 4 });
    await expect(c.predict(rgb)).rejects.toThrow(/expects 16x16x1 images.*has 16x16x3 images \(channels differ\)/);
    // The right shape works and gives one prediction per image.
    expect((await c.predict(gridTask({ n: 8, size: 16, channels: 1, numClasses: 4 }))).preds).toHaveLength(8);
  });

  it('an ImageSet whose bytes do not match its own shape', async () => {
    using c = await loadModel(ckpt);
    const set = { ...gridTask({ n: 2, size: 16, channels: 1 }), n: 3 };
    await expect(c.predict(set)).rejects.toThrow(/images has 512 bytes, expected 768 \(3x1x16x16\)/);
  });

  it('raw bytes: a size that is not whole images, or a stated shape that differs', async () => {
    using c = await loadModel(ckpt);
    await expect(c.predict(new Uint8Array(300))).rejects.toThrow(/300 bytes, not a whole number of 16x16x1 images \(256 bytes each\).*options.shape/);
    // 32x32x1 bytes are a multiple of 256: only the stated shape can tell them apart.
    const bytes = gridTask({ n: 2, size: 32, channels: 1 }).images;
    expect((await c.predict(bytes)).preds).toHaveLength(8);
    await expect(c.predict(bytes, { shape: [1, 32, 32] })).rejects.toThrow(/expects 16x16x1 images \(HxWxC\), but images of shape \[1,32,32\] has 32x32x1/);
    await expect(c.predict(bytes, { shape: [2, 1, 32, 32] })).rejects.toThrow(/image size differ/);
    const ok = gridTask({ n: 3, size: 16, channels: 1 }).images;
    expect((await c.predict(ok, { shape: [1, 16, 16] })).preds).toHaveLength(3);
    expect((await c.predict(ok, { shape: [3, 1, 16, 16] })).preds).toHaveLength(3);
    await expect(c.predict(ok, { shape: [2, 1, 16, 16] })).rejects.toThrow(/768 bytes, but options.shape \[2,1,16,16\] needs 512/);
    await expect(c.predict(ok, { shape: [16, 16] })).rejects.toThrow(RangeError);
  });
});

describe('evaluate and checkCompatible', () => {
  it('names the checkpoint/data mismatch before any work (16x16x1, 4 classes vs 32x32x3, 6 classes)', async () => {
    using c = await loadModel(ckpt);
    const predict = vi.spyOn(c, 'predict');
    const data = gridTask({ n: 6, size: 32, channels: 3, numClasses: 6 });
    await expect(evaluate(c, data)).rejects.toThrow(
      `${ckpt}: the model expects 16x16x1 images (HxWxC) and 4 classes, but synthetic(seed 0) has 32x32x3 images and 6 classes (image size, channels, classes differ)`,
    );
    expect(predict).not.toHaveBeenCalled();
  });

  it('refuses a class-count mismatch alone, accepts a matching set', async () => {
    using c = await loadModel(ckpt);
    await expect(evaluate(c, gridTask({ n: 6, size: 16, channels: 1, numClasses: 6 }))).rejects.toThrow(/and 4 classes, but .* and 6 classes \(classes differ\)/);
    const s = await evaluate(c, gridTask({ n: 8, size: 16, channels: 1, numClasses: 4 }));
    expect(s.perClassRecall).toHaveLength(4);
  });

  it('checkCompatible is usable on its own (the CLI calls it with the checkpoint meta)', () => {
    expect(() => checkCompatible(META, { channels: 1, height: 16, width: 16, numClasses: 4 })).not.toThrow();
    expect(() => checkCompatible(META, { channels: 1, height: 16, width: 16, numClasses: 6, source: 'test set' }, { checkpoint: 'x.safetensors' }))
      .toThrow('x.safetensors: the model expects 16x16x1 images (HxWxC) and 4 classes, but test set has 16x16x1 images and 6 classes (classes differ)');
    expect(() => checkCompatible(META, { channels: 1, height: 16, width: 16, numClasses: 6 }, { classes: false })).not.toThrow();
    expect(() => checkCompatible(META, { channels: 1, height: 16, width: 8 })).toThrow(/16x8x1 images \(image size differ\)/);
  });
});

/** The image count of every native forward the classifier makes from now on. */
function recordSizes(c: Classifier): number[] {
  const sizes: number[] = [];
  const real = c.model.evaluate.bind(c.model);
  vi.spyOn(c.model, 'evaluate').mockImplementation((data, opts) => {
    sizes.push(data.size);
    return real(data, opts);
  });
  return sizes;
}

describe('concurrent predict calls', () => {
  /** Calls of 1..7 images (sizes cycle), each with its own images. */
  function requests(count: number): Uint8Array[] {
    return Array.from({ length: count }, (_, i) => noiseTask({ n: 1 + (i % 7), size: 16, channels: 1, seed: 100 + i }).images);
  }

  it('50 concurrent calls of different sizes equal sequential calls, in fewer native forwards', async () => {
    const reqs = requests(50);
    using c = await loadModel(ckpt, { maxBatch: 32 });
    const sequential = [];
    for (const r of reqs) sequential.push(await c.predict(r, { logits: true }));
    const sizes = recordSizes(c);
    const concurrent = await Promise.all(reqs.map((r, i) => c.predict(r, { logits: i % 3 !== 0 })));
    concurrent.forEach((got, i) => {
      expect(got.preds, `call ${i}`).toEqual(sequential[i].preds);
      if (i % 3 === 0) expect(got.logits).toBeUndefined();
      else {
        expect(got.logits).toHaveLength(sequential[i].preds.length * 4);
        got.logits!.forEach((v, j) => expect(v).toBeCloseTo(sequential[i].logits![j], 4));
      }
    });
    // Batched: far fewer forwards than calls, none over maxBatch images.
    expect(sizes.length).toBeLessThan(20);
    expect(sizes.length).toBeGreaterThan(1);
    const images = reqs.reduce((a, r) => a + r.length / 256, 0);
    expect(sizes.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(images); // + 1 per lone image run as a pair
    expect(sizes.reduce((a, b) => a + b)).toBeLessThanOrEqual(images + sizes.length);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(32);
    expect(c.queued).toBe(0);
  });

  it('maxBatch 1 runs the calls one at a time, with the same results', async () => {
    const reqs = requests(12);
    using c = await loadModel(ckpt);
    const expected = await Promise.all(reqs.map((r) => c.predict(r)));
    using one = await loadModel(ckpt, { maxBatch: 1 });
    const sizes = recordSizes(one);
    const got = await Promise.all(reqs.map((r) => one.predict(r)));
    expect(sizes).toHaveLength(12);
    got.forEach((g, i) => expect(g.preds).toEqual(expected[i].preds));
  });

  it('a bad call among concurrent ones rejects only that caller', async () => {
    const reqs = requests(20);
    using c = await loadModel(ckpt);
    const expected = await Promise.all(reqs.map((r) => c.predict(r)));
    const calls: Promise<unknown>[] = reqs.map((r) => c.predict(r));
    calls.splice(7, 0, c.predict(new Uint8Array(100)), c.predict(new Float32Array(256) as never), c.predict(reqs[0], { shape: [3, 16, 16] }));
    const settled = await Promise.allSettled(calls);
    const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : []));
    expect(rejected).toEqual([7, 8, 9]);
    const ok = settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<{ preds: Int32Array }>).value);
    ok.forEach((g, i) => expect(g.preds).toEqual(expected[i].preds));
  });

  it('a native failure in a merged batch fails only the call that causes it', async () => {
    const img = (n: number, seed: number) => noiseTask({ n, size: 16, channels: 1, seed }).images;
    using c = await loadModel(ckpt);
    const [one, two, five, three] = [img(1, 1), img(2, 2), img(5, 3), img(3, 4)];
    const expected = await Promise.all([one, two, three].map((r) => c.predict(r)));
    // Stand-in for a native error caused by one call's images: any forward of 5 or more images fails.
    const real = c.model.evaluate.bind(c.model);
    const sizes: number[] = [];
    vi.spyOn(c.model, 'evaluate').mockImplementation((data, opts) => {
      sizes.push(data.size);
      return data.size >= 5 ? Promise.reject(new Error('native failure')) : real(data, opts);
    });
    const first = c.predict(one); // runs alone at once; the next three queue behind it and merge (10 images)
    const settled = await Promise.allSettled([first, c.predict(two), c.predict(five), c.predict(three)]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const value = (i: number) => (settled[i] as PromiseFulfilledResult<{ preds: Int32Array }>).value.preds;
    expect(value(1)).toEqual(expected[1].preds);
    expect(value(3)).toEqual(expected[2].preds);
    // 1 alone (as a pair), the merged 10 (failed), then 2, 5 (failed), 3 one by one.
    // (A lone image runs as a pair: one-image forwards are slow on CPU, see PAD_SINGLE_IMAGE.)
    expect(sizes).toEqual([2, 10, 2, 5, 3]);
  });

  it('dispose rejects queued calls, lets the running one finish, then frees the model', async () => {
    const reqs = requests(5);
    const c = await loadModel(ckpt);
    const calls = reqs.map((r) => c.predict(r));
    c.dispose();
    const settled = await Promise.allSettled(calls);
    expect(settled[0].status).toBe('fulfilled');
    for (const s of settled.slice(1)) expect(s.status === 'rejected' && String(s.reason)).toMatch(/disposed before this call ran/);
    expect(c.model.disposed).toBe(true);
    await expect(c.predict(reqs[0])).rejects.toThrow(/classifier is disposed/);
  });

  it('a lone image gives the same result as the same image inside a batch', async () => {
    using c = await loadModel(ckpt);
    const set = noiseTask({ n: 5, size: 16, channels: 1, seed: 77 });
    const all = await c.predict(set.images, { logits: true });
    for (let i = 0; i < 5; i++) {
      const one = await c.predict(set.images.subarray(i * 256, (i + 1) * 256), { logits: true });
      expect(one.preds).toEqual(all.preds.subarray(i, i + 1));
      expect(one.logits).toHaveLength(4);
      one.logits!.forEach((v, j) => expect(v).toBeCloseTo(all.logits![i * 4 + j], 4));
    }
  });

  it('an empty call resolves at once with empty results', async () => {
    using c = await loadModel(ckpt);
    const r = await c.predict(new Uint8Array(0), { logits: true });
    expect(r.preds).toHaveLength(0);
    expect(r.logits).toHaveLength(0);
  });

  it('Classifier can wrap a model built in code', async () => {
    using model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1 });
    const c = new Classifier(model, META, { maxBatch: 4 });
    expect(c.maxBatch).toBe(4);
    expect((await c.predict(gridTask({ n: 5, size: 16 }).images)).preds).toHaveLength(5);
  });
});
