// Five-crop test-time ensembling (src/tta.ts), as LIFT does it:
//  - the upscale and the five crops equal torchvision's Resize(r) + FiveCrop(s) on a PIL image (LIFT's
//    transform), byte for byte, with Debian's torchvision and Pillow (odd margins: the centre crop's
//    Python rounding);
//  - evaluateFiveCrop's predictions and logits equal a manual average of the five crops' logits,
//    each crop set evaluated on its own;
//  - in a run, eval.tta 'five-crop' adds one row after the last stage and leaves the others as with
//    'none'; the row equals evaluate(loadModel(final checkpoint), test, { tta }); 'none' rows equal
//    today's evaluation of the checkpoints; a ttaResize below the image size is refused up front.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate, loadModel, predictFiveCrop } from '../src/classifier.js';
import { Dataset } from '../src/dataset.js';
import { Model } from '../src/model.js';
import { loadImageSets } from '../src/pipeline/data.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';
import { parseConfig } from '../src/config.js';
import { readCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import { writeSafetensors } from '../src/safetensors.js';
import { fileURLToPath } from 'node:url';
import { cropImages, evaluateFiveCrop, fiveCrops, resizeBilinear } from '../src/tta.js';
import { PYTHON, torchvisionUnavailable } from './helpers/python.js';

const root = mkdtempSync(join(tmpdir(), 'btm-tta-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const skipReason = torchvisionUnavailable();

function pixels(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 97 + (i >> 3) * 13 + seed * 31) % 256);
}

describe.skipIf(skipReason !== undefined)(`upscale + five crops == torchvision on PIL${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it.each([[1, 28, 31], [3, 32, 35], [1, 16, 18], [3, 8, 40], [1, 16, 21], [3, 10, 11]])('%i channel(s), %i -> %i', (c, s, r) => {
    const n = 2;
    const images = pixels(n * c * s * s, s);
    const mine = fiveCrops(images, n, c, s, r);
    const py = `
import sys
import numpy as np
from PIL import Image
from torchvision import transforms
n, c, s, r = ${n}, ${c}, ${s}, ${r}
a = np.frombuffer(bytes.fromhex(sys.stdin.read()), dtype=np.uint8).reshape(n, c, s, s)
t = transforms.Compose([transforms.Resize(r), transforms.FiveCrop(s)])
crops = [[np.asarray(im).reshape(s, s, -1).transpose(2, 0, 1) for im in t(Image.fromarray(a[i, 0] if c == 1 else a[i].transpose(1, 2, 0)))] for i in range(n)]
out = np.stack([np.stack([crops[i][k] for i in range(n)]) for k in range(5)])  # crop-major
sys.stdout.write(out.astype(np.uint8).tobytes().hex())
`;
    const ref = Buffer.from(execFileSync(PYTHON, ['-c', py], { input: Buffer.from(images).toString('hex'), encoding: 'utf8' }), 'hex');
    expect(ref.length).toBe(mine.length);
    expect(Buffer.from(mine).equals(ref)).toBe(true);
  });
});

describe('evaluateFiveCrop', () => {
  it('equals the mean of the five crops evaluated one by one (logits, then argmax)', async () => {
    const n = 23, c = 1, s = 16, r = 19, C = 5;
    using model = new Model({ arch: 'resnet8', numClasses: C, inChannels: c, imageSize: s, seed: 7 });
    const images = pixels(n * c * s * s, 3);
    const normalize = { mean: [0.4], std: [0.3] };
    // one image per forward on both sides: an optimised BLAS (OpenBLAS 0.3.29 on the trixie leg) may round a
    // matmul row differently with the batch's row count, which the chunked ensemble and the per-crop passes differ in
    const got = await evaluateFiveCrop(model, { images, n, channels: c, height: s, width: s }, { resize: r, normalize, chunk: 10, batchSize: 1 });
    // manual: upscale, the five offsets written out (centre: (19 - 16) / 2 = 1.5 -> round half to even -> 2)
    const big = resizeBilinear(images, n, c, s, s, r, r);
    const offsets = [[0, 0], [0, 3], [3, 0], [3, 3], [2, 2]];
    const per: Float32Array[] = [];
    for (const [top, left] of offsets) {
      using ds = new Dataset({ images: cropImages(big, n, c, r, r, top, left, s), labels: new Int32Array(n), n, channels: c, height: s, width: s });
      per.push((await model.evaluate(ds, { logits: true, normalize, batchSize: 1 })).logits!);
    }
    const mean = new Float32Array(n * C);
    for (let i = 0; i < n * C; i++) mean[i] = (per[0][i] + per[1][i] + per[2][i] + per[3][i] + per[4][i]) / 5;
    expect(Array.from(got.logits)).toEqual(Array.from(mean));
    const preds = Array.from({ length: n }, (_, i) => {
      const row = Array.from(mean.subarray(i * C, (i + 1) * C));
      return row.indexOf(Math.max(...row));
    });
    expect(Array.from(got.preds)).toEqual(preds);
    // the crops differ, so the ensemble is not one crop's prediction
    expect(per.some((p, k) => k > 0 && Array.from(p).some((v, i) => v !== per[0][i]))).toBe(true);
  });
});

describe('bad input', () => {
  it('names the function, the argument and what it expected', async () => {
    using model = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 1, imageSize: 8 });
    const src = { images: new Uint8Array(2 * 64), n: 2, channels: 1, height: 8, width: 8 };
    await expect(evaluateFiveCrop(model, src, { resize: 7 })).rejects.toThrow(/^evaluateFiveCrop: the upscaled side \(eval.ttaResize, options.resize\) must be an integer >= the image size 8, got 7$/);
    await expect(evaluateFiveCrop(model, { ...src, height: 4, width: 4, images: new Uint8Array(32) })).rejects.toThrow(/^evaluateFiveCrop: the images are 4x4, the model takes 8x8/);
    await expect(evaluateFiveCrop(model, { ...src, n: 3 })).rejects.toThrow(/^evaluateFiveCrop: source.images has 128 bytes, n x channels x height x width = 192$/);
    await expect(evaluateFiveCrop(model, src, { crop: 5 } as never)).rejects.toThrow(/^evaluateFiveCrop: options: unknown option 'crop'/);
    await expect(evaluateFiveCrop({} as never, src)).rejects.toThrow(/^evaluateFiveCrop: model must be a Model/);
    const file = join(root, 'small.safetensors');
    await saveCheckpoint(file, model, { arch: 'resnet8', numClasses: 3, inChannels: 1, imageSize: 8 });
    using c = await loadModel(file);
    const set = { ...src, labels: new Int32Array(2), numClasses: 3, source: 'x' };
    await expect(predictFiveCrop(c, set, { ttaResize: 6 })).rejects.toThrow(/^predictFiveCrop: options.ttaResize \(the side images are upscaled to before the five crops\) must be >= the image size 8, got 6$/);
    await expect(evaluate(c, set, { tta: 'five-crop', ttaResize: 6 })).rejects.toThrow(/^evaluate: options.ttaResize .* got 6$/);
    await expect(evaluate(c, set, { tta: 'ten-crop' as never })).rejects.toThrow(/^evaluate: options.tta must be one of/);
    expect((await predictFiveCrop(c, set)).preds).toHaveLength(2);
  });
});

describe('eval.tta in a run and in evaluate', () => {
  const cfg = (name: string, evalPatch: object) => deepMerge(presetConfig('crt'), {
    name, runDir: root, seed: 2, pipeline: ['pretrain', 'posttrain'],
    data: { dataset: 'synthetic', imbalanceFactor: 5, synthetic: { numClasses: 4, size: 16, trainPerClass: 40, testPerClass: 15 } },
    model: { arch: 'resnet8' },
    pretrain: { epochs: 1, batchSize: 32, warmupEpochs: 0 },
    posttrain: { epochs: 1, batchSize: 16 },
    eval: evalPatch,
  });

  it("'five-crop' adds a final row, the others stay as with 'none'; evaluate(loadModel) gives the same", async () => {
    const plain = await runPipeline(cfg('tta-none', { tta: 'none' }));
    const tta = await runPipeline(cfg('tta-five', { tta: 'five-crop', ttaResize: 18 }));
    expect(plain.rows.map((r) => r.step)).toEqual(['pretrain', 'posttrain']);
    expect(tta.rows.map((r) => r.step)).toEqual(['pretrain', 'posttrain', 'tta']);
    const strip = (r: (typeof plain.rows)[number]) => ({ ...r, trainSeconds: 0 });
    expect(tta.rows.slice(0, 2).map(strip)).toEqual(plain.rows.map(strip));
    const last = tta.rows[2];
    expect(last.label).toBe(`${tta.rows[1].label} + five-crop TTA (16 -> 18)`);

    const config = parseConfig(cfg('x', {}));
    const { test } = await loadImageSets(config.data, config.seed);
    using classifier = await loadModel(tta.checkpoint!);
    const counts = JSON.parse(readFileSync(join(tta.dir, 'results.json'), 'utf8')).split.counts as number[];
    const withTta = await evaluate(classifier, test, { trainCounts: counts, tta: 'five-crop', ttaResize: 18 });
    expect(withTta.perClassRecall).toEqual(last.perClassRecall);
    expect(withTta.accuracy).toBe(last.accuracy);
    // 'none': today's evaluation, the posttrain row
    const without = await evaluate(classifier, test, { trainCounts: counts });
    expect(without.perClassRecall).toEqual(tta.rows[1].perClassRecall);
    expect(without.harmonicMean).toBe(tta.rows[1].harmonicMean);
  });

  it('btm eval --eval.tta five-crop gives the run\'s tta row; a plain state dict is read as --model.arch', async () => {
    const tta = await runPipeline(cfg('tta-cli', { tta: 'five-crop' }));
    const last = tta.rows[tta.rows.length - 1];
    expect(last.label).toMatch(/\+ five-crop TTA \(16 -> 18\)$/); // the default: 16 x 248 / 224 = 17.7 -> 18
    const data = ['--data.dataset', 'synthetic', '--data.imbalanceFactor', '5', '--data.synthetic.numClasses', '4', '--data.synthetic.size', '16',
      '--data.synthetic.trainPerClass', '40', '--data.synthetic.testPerClass', '15', '--seed', '2'];
    const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
    const run = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [cli, 'eval', ...args, ...data, '--json'], { encoding: 'utf8' }));
    expect(run(tta.checkpoint!, '--eval.tta', 'five-crop').perClassRecall).toEqual(last.perClassRecall);
    expect(run(tta.checkpoint!).perClassRecall).toEqual(tta.rows[tta.rows.length - 2].perClassRecall);
    // the same weights without btm-node metadata: read as --model.arch
    const plain = join(root, 'plain.safetensors');
    await writeSafetensors(plain, (await readCheckpoint(tta.checkpoint!)).state);
    // the run's 'auto' normalisation, which a plain file does not carry, given explicitly
    const { normalize } = (await readCheckpoint(tta.checkpoint!)).meta;
    expect(normalize).toBeDefined();
    const withNorm = ['--data.normalize', JSON.stringify(normalize)];
    expect(run(plain, '--model.arch', 'resnet8', '--eval.tta', 'five-crop', ...withNorm).perClassRecall).toEqual(last.perClassRecall);
  });

  it('a ttaResize below the image size is refused before the run directory is written', async () => {
    await expect(runPipeline(cfg('tta-bad', { tta: 'five-crop', ttaResize: 12 }))).rejects.toThrow(
      /eval.ttaResize: the images are upscaled before the five crops of 16x16: it must be >= 16, got 12/,
    );
    expect(existsSync(join(root, 'tta-bad'))).toBe(false);
  });
});
