// Multi-label end to end: the ml-btm preset on a mosaic set made from a small IDX pair laid out as
// Fashion-MNIST (pretrain with BCE -> BTM on per-class positive subsets -> class-aware post-training),
// per-class AP rows recomputed from the saved checkpoint; the samplers and the BCE loss options.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/checkpoint.js';
import { evaluateMultiLabel, loadModel } from '../src/classifier.js';
import { parseConfig } from '../src/config.js';
import { gridTask } from '../src/data/synthetic.js';
import { Dataset } from '../src/dataset.js';
import { sigmoidScores, summarizeMultiLabel } from '../src/metrics-multilabel.js';
import { Model } from '../src/model.js';
import { loadMosaicSets } from '../src/pipeline/data.js';
import { classBalancedWeights, logPriorOdds, lossOptions } from '../src/pipeline/losses.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';
import { Rng } from '../src/sampling/rng.js';
import { multiLabelBtmSubsets, positivesByClass } from '../src/sampling/multilabel.js';
import { cliRunner } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'btm-multilabel-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** The btm command line (dist, compiled by the global setup). */
const btm = cliRunner(120_000);

/** An IDX pair per split in the Fashion-MNIST layout: 10 classes of 8x8 grid-task images. */
function fakeFashionMnist(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const idx = (dims: number[], data: ArrayLike<number>) => {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(0x800 + dims.length, 0);
    dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    return gzipSync(Buffer.concat([header, Buffer.from(data)]));
  };
  for (const [prefix, n, seed] of [['train', 500, 1], ['t10k', 200, 2]] as const) {
    const set = gridTask({ n, numClasses: 10, size: 8, seed });
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), idx([n, 8, 8], set.images));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), idx([n], set.labels));
  }
  return dir;
}

const fmnist = fakeFashionMnist(join(root, 'fmnist'));

function tinyConfig(name: string, patch: object = {}) {
  return deepMerge(presetConfig('ml-btm'), {
    name,
    runDir: root,
    seed: 2,
    data: { dir: fmnist, imbalanceFactor: 10, mosaic: { trainSize: 400, testSize: 200, seed: 1 } },
    model: { arch: 'resnet8' },
    pretrain: { epochs: 4, batchSize: 32, warmupEpochs: 0, cropPadding: 0, hflip: false },
    btm: { epochs: 2, numSubsets: 2, perClass: 6, batchSize: 16, cropPadding: 0, hflip: false },
    posttrain: { epochs: 1, batchSize: 32 },
    ...patch,
  });
}

describe('multi-label run (preset ml-btm, dataset mosaic)', () => {
  it('pretrain -> btm -> posttrain with BCE; rows of per-class AP that the checkpoint reproduces', async () => {
    const r = await runPipeline(tinyConfig('ml'));
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['pretrain', 'btm-0', 'btm-1', 'btm-merge', 'posttrain']);
    for (const row of r.rows) {
      expect(row.metric).toBe('ap');
      expect(row.perClassRecall).toHaveLength(10);
      expect(row.arithmeticMean).toBeGreaterThan(0);
      expect(row.arithmeticMean).toBeLessThanOrEqual(1);
      expect(row.harmonicMean).toBeLessThanOrEqual(row.geometricMean + 1e-12);
      expect(row.geometricMean).toBeLessThanOrEqual(row.arithmeticMean + 1e-12);
      expect(row.lowestRecall).toBe(Math.min(...row.perClassRecall));
    }
    for (const f of ['ap.svg', 'ap.png', 'results.json', 'btm/merged.safetensors', 'btm/subset-1.txt', 'posttrain.safetensors']) {
      expect(existsSync(join(r.dir, f)), f).toBe(true);
    }
    expect(existsSync(join(r.dir, 'split.txt'))).toBe(false);
    const results = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8'));
    expect(results.split.multiLabel).toBe(true);
    const metrics = readFileSync(join(r.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.kind === 'epoch').every((m) => m.loss === 'bce')).toBe(true);

    // the posttrain row from the saved checkpoint, scored independently
    const cfg = parseConfig(tinyConfig('ml'));
    const { test, multiLabel } = loadMosaicSets(cfg.data);
    const { state, meta } = await readCheckpoint(r.checkpoint!);
    const model = new Model({ arch: 'resnet8', numClasses: 10, inChannels: 1, imageSize: 16 });
    model.loadStateDict(state);
    const ds = new Dataset({ ...test, targets: multiLabel.testTargets });
    const { logits } = await model.evaluate(ds, { logits: true, normalize: meta.normalize });
    const s = summarizeMultiLabel(multiLabel.testTargets, sigmoidScores(logits!), 10, { trainCounts: results.split.counts });
    const post = r.rows.at(-1)!;
    expect(post.arithmeticMean).toBeCloseTo(s.mAP, 10);
    expect(post.perClassRecall).toEqual(s.perClassAP);
    expect(post.few).toBe(s.few?.mAP ?? null);
    model.dispose();
    ds.dispose();

    // btm eval on the same mosaic flags: the run's last row (per-class AP, its means, groups, top-1 hit)
    const mosaicFlags = ['--data.dataset', 'mosaic', '--data.dir', fmnist, '--data.imbalanceFactor', '10',
      '--data.mosaic.trainSize', '400', '--data.mosaic.testSize', '200', '--data.mosaic.seed', '1'];
    const ev = await btm('eval', r.checkpoint!, '--json', ...mosaicFlags);
    expect(ev.stderr).toBe('');
    expect(ev.code).toBe(0);
    const e = JSON.parse(ev.stdout);
    expect(e.perClassAP).toHaveLength(10);
    e.perClassAP.forEach((ap: number, c: number) => expect(ap).toBeCloseTo(post.perClassRecall[c], 6));
    expect(e.mAP).toBeCloseTo(post.arithmeticMean, 6);
    expect(e.harmonicMean).toBeCloseTo(post.harmonicMean, 6);
    expect(e.geometricMean).toBeCloseTo(post.geometricMean, 6);
    expect(e.lowestAP).toBeCloseTo(post.lowestRecall, 6);
    expect(e.topHitRate).toBeCloseTo(post.accuracy, 6);
    for (const g of ['many', 'medium', 'few'] as const) {
      if (post[g] === null) expect(e[g]).toBeNull();
      else expect(e[g].mAP).toBeCloseTo(post[g]!, 6);
    }
    const words = await btm('eval', r.checkpoint!, ...mosaicFlags, '--pretrain.epochs', '4');
    expect(words.code).toBe(0);
    expect(words.stderr).toMatch(/^btm eval: not used here .*: --pretrain\.epochs/);
    expect(words.stdout).toMatch(/^class +train images +test positives +AP$/m);
    expect(words.stdout).toContain(`mAP ${(100 * post.arithmeticMean).toFixed(2)}%  H-AP ${(100 * post.harmonicMean).toFixed(2)}%`);
    // another mosaic test set (seed) is another evaluation, of the same model
    const other = await btm('eval', r.checkpoint!, '--json', ...mosaicFlags.slice(0, -1), '2');
    expect(other.code).toBe(0);
    expect(JSON.parse(other.stdout).mAP).not.toBeCloseTo(post.arithmeticMean, 6);

    // the library's evaluateMultiLabel: the same numbers; targets of another length are refused
    const classifier = await loadModel(r.checkpoint!);
    const lib = await evaluateMultiLabel(classifier, test, multiLabel.testTargets, { trainCounts: results.split.counts });
    lib.perClassAP.forEach((ap, c) => expect(ap).toBeCloseTo(s.perClassAP[c], 6));
    expect(lib.topHitRate).toBeCloseTo(post.accuracy, 12);
    await expect(evaluateMultiLabel(classifier, test, multiLabel.testTargets.subarray(10))).rejects.toThrow(/evaluateMultiLabel: targets has 1990 entries, expected n \* numClasses = 200 \* 10/);
    classifier.dispose();

    // btm split lists the whole generated training set with its label sets and the per-class counts
    const splitFile = join(root, 'mosaic-split.txt');
    const sp = await btm('split', '--out', splitFile, ...mosaicFlags);
    expect(sp.code).toBe(0);
    expect(sp.stdout).toContain(`400 images (the whole training set: a multi-label run takes no split), images containing each class: ${results.split.counts.join(' ')} -> ${splitFile}`);
    const splitLines = readFileSync(splitFile, 'utf8').trim().split('\n');
    expect(splitLines[0]).toMatch(/^# btm-split multi-label dataset=mosaic dataset_size=400 num_classes=10 samples=400 /);
    // btm interpolate is single-label: refused by name, exit code 2
    const interp = await btm('interpolate', r.checkpoint!, r.checkpoint!, ...mosaicFlags);
    expect(interp.code).toBe(2);
    expect(interp.stderr).toMatch(/^btm: dataset 'mosaic' is multi-label; btm interpolate scores per-class recall/);
    const train = loadMosaicSets(cfg.data).multiLabel.trainSets;
    expect(splitLines.slice(1)).toEqual(train.map((set, i) => `${i}\t${set.join(',')}`));

    // each BTM subset holds at least min(N_C, positives) images of every class, each image once
    const lines = readFileSync(join(r.dir, 'btm', 'subset-0.txt'), 'utf8').trim().split('\n');
    const idx = lines.map((l) => Number(l.split('\t')[0]));
    expect(new Set(idx).size).toBe(idx.length);
    for (const l of lines) expect(l.split('\t')[1]).toBe(train[Number(l.split('\t')[0])].join(','));
    for (let c = 0; c < 10; c++) {
      const have = idx.filter((i) => train[i].includes(c)).length;
      expect(have).toBeGreaterThanOrEqual(Math.min(6, results.split.counts[c]));
    }
  });

  it('ml-more: MORE pre-training with BCE as the base loss, merged into the plain layout', async () => {
    const cfg = deepMerge(presetConfig('ml-more'), { ...tinyConfig('ml-more'), pipeline: ['pretrain', 'posttrain'], btm: undefined });
    const r = await runPipeline(deepMerge(cfg, { pretrain: { epochs: 2, more: { rank: 2 } } }));
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => [x.step, x.metric])).toEqual([['pretrain', 'ap'], ['posttrain', 'ap']]);
    const metrics = readFileSync(join(r.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.kind === 'epoch' && m.stage === 'pretrain').map((m) => m.loss)).toEqual(['bce+more', 'bce+more']);
    const { state } = await readCheckpoint(join(r.dir, 'pretrain.safetensors'));
    const plain = new Model({ arch: 'resnet8', numClasses: 10, inChannels: 1, imageSize: 16 });
    expect(state.map((e) => e.name)).toEqual(plain.stateDict().map((e) => e.name));
    plain.dispose();
  });

  it('refuses single-label losses on a multi-label set, naming the key; takes every merge', () => {
    expect(() => parseConfig(tinyConfig('x', { posttrain: { loss: { type: 'las' } } }))).toThrow(/posttrain\.loss\.type: dataset 'mosaic' is multi-label: the loss must be one of bce, bce-logit-adjust, bce-cb, got 'las'/);
    // adaptive / greedy merges score per-class AP on multi-label sets (test/multilabel-list-pipeline.test.ts)
    expect(parseConfig(deepMerge(tinyConfig('x'), { btm: { merge: 'greedy-hmean' } })).btm.merge).toBe('greedy-hmean');
    expect(() => parseConfig(deepMerge(tinyConfig('x'), { pretrain: { loss: { type: 'bce-cb', beta: 1 } } }))).toThrow(/pretrain\.loss\.beta/);
  });
});

describe('multi-label samplers', () => {
  const sets = [[0], [0, 1], [1, 2], [0, 2], [0], [2]];

  it('positivesByClass lists an image under each of its classes; bad input is named', () => {
    expect(positivesByClass([0, 1, 2, 3, 4, 5], sets, 3).map((l) => Array.from(l))).toEqual([[0, 1, 3, 4], [1, 2], [2, 3, 5]]);
    expect(positivesByClass([5, 1], sets, 3).map((l) => Array.from(l))).toEqual([[1], [1], [5]]);
    expect(() => positivesByClass([6], sets, 3)).toThrow(/index 6/);
    expect(() => positivesByClass([0], [[]], 3)).toThrow(/empty label set/);
    expect(() => positivesByClass([0], [[3]], 3)).toThrow(/label 3 of sample 0/);
  });

  it('BTM subsets: N_C positives per class, an image drawn for two classes kept once', () => {
    const byClass = positivesByClass([0, 1, 2, 3, 4, 5], sets, 3);
    const { subsets, shortClasses, duplicates } = multiLabelBtmSubsets(byClass, { numSubsets: 20, perClass: 2 }, new Rng(4));
    expect(shortClasses).toEqual([]);
    subsets.forEach((s, k) => {
      expect(new Set(s).size).toBe(s.length);
      expect(s.length + duplicates[k]).toBe(6);
      for (let c = 0; c < 3; c++) expect(Array.from(s).filter((i) => sets[i].includes(c)).length).toBeGreaterThanOrEqual(2);
    });
    expect(duplicates.some((d) => d > 0)).toBe(true);
  });
});

describe('BCE loss options', () => {
  it('class-balanced weights (Cui et al.): (1 - beta) / (1 - beta^n), normalised to sum C', () => {
    const w = classBalancedWeights([100, 10, 1], 0.9);
    const raw = [100, 10, 1].map((n) => 0.1 / (1 - 0.9 ** n));
    const total = raw.reduce((a, b) => a + b, 0);
    w.forEach((v, c) => expect(v).toBeCloseTo((raw[c] * 3) / total, 12));
    expect(classBalancedWeights([5, 50], 0)).toEqual([1, 1]);
    expect(() => classBalancedWeights([1], 1)).toThrow(/beta/);
  });

  it('logit-adjusted BCE offsets: tau log(pi / (1 - pi)), pi = n_c / n', () => {
    expect(logPriorOdds([50, 10, 0], 100)).toEqual([0, Math.log(0.1 / 0.9), Math.log(1e-12 / (1 - 1e-12))]);
    const o = lossOptions({ type: 'bce-logit-adjust', tau: 0.5 }, [50, 10], 100);
    expect(o.loss).toBe('bce');
    expect(o.logitOffsets![1]).toBeCloseTo(0.5 * Math.log(0.1 / 0.9), 12);
    expect(lossOptions({ type: 'bce' }, [1, 2])).toEqual({ loss: 'bce' });
    expect(lossOptions({ type: 'bce-cb', beta: 0.9 }, [100, 10, 1]).classWeights).toEqual(classBalancedWeights([100, 10, 1], 0.9));
  });
});

describe('multi-label scores', () => {
  it('sigmoidScores is the logistic function in float64, stable at large |z|', async () => {
    const { sigmoidScores: sig, topHitRate } = await import('../src/metrics-multilabel.js');
    const s = sig([0, Math.log(3), -Math.log(3), 800, -800]);
    [0.5, 0.75, 0.25, 1, 0].forEach((v, i) => expect(s[i]).toBeCloseTo(v, 15));
    expect(s[4]).toBeGreaterThanOrEqual(0);
    // sample 0's top class (2) is a label, sample 1's (0) is not
    expect(topHitRate([0, 0, 1, 0, 1, 0], [0.1, 0.2, 0.9, 0.8, 0.1, 0.3], 3)).toBe(0.5);
  });
});
