// Multi-label list files through the pipeline (dataset 'multilabel-list'): PNG mosaics written with
// sharp and listed as `path<TAB>labels`, the ml-btm preset end to end, the errors a bad list gets
// (through runPipeline and the CLI), and adaptive / greedy merges scored by per-class AP.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/checkpoint.js';
import { parseConfig } from '../src/config.js';
import { makeMosaicSet, type MosaicSet } from '../src/data/mosaic.js';
import { loadMultiLabelListDataset } from '../src/data/multilabel-list.js';
import { gridTask } from '../src/data/synthetic.js';
import { Dataset } from '../src/dataset.js';
import { adaptiveWeights } from '../src/merge.js';
import { sigmoidScores, summarizeMultiLabel } from '../src/metrics-multilabel.js';
import { Model } from '../src/model.js';
import { loadImageSets, loadMultiLabelListSets } from '../src/pipeline/data.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';
import { cliRunner } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'btm-mllist-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** The btm command line (dist, compiled by the global setup). */
const btmCli = cliRunner(120_000);

const C = 6;
/** 2x2 mosaics (16x16, one channel) of 8x8 grid-task items, long-tailed per cell (train) or balanced (test). */
const trainSet = makeMosaicSet(gridTask({ n: 120, numClasses: C, size: 8, seed: 1 }), { n: 160, imbalanceFactor: 8, seed: 3 });
const testSet = makeMosaicSet(gridTask({ n: 60, numClasses: C, size: 8, seed: 2 }), { n: 80, imbalanceFactor: 1, seed: 4 });

/** Writes the images of `set` as PNGs under root/img/<name>/ and returns the list file's text. */
async function writeImages(set: MosaicSet, name: string): Promise<string> {
  mkdirSync(join(root, 'img', name), { recursive: true });
  const plane = set.height * set.width;
  const lines: string[] = [];
  for (let i = 0; i < set.n; i++) {
    const file = `img/${name}/${i}.png`;
    await sharp(Buffer.from(set.images.subarray(i * plane, (i + 1) * plane)), { raw: { width: set.width, height: set.height, channels: 1 } })
      .png().toFile(join(root, file));
    lines.push(`${file}\t${set.labels[i].join(',')}`);
  }
  return lines.join('\n') + '\n';
}

let trainText = '', testText = '';
/** Writes a list file under root and returns its path. */
function list(name: string, text: string): string {
  const path = join(root, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  trainText = await writeImages(trainSet, 'train');
  testText = await writeImages(testSet, 'test');
  list('train.txt', trainText);
  list('test.txt', testText);
});

const data = (patch: object = {}) => ({
  dataset: 'multilabel-list', trainList: join(root, 'train.txt'), testList: join(root, 'test.txt'), root, imageSize: 16, channels: 1, ...patch,
});

function tinyConfig(name: string, patch: object = {}) {
  return deepMerge(presetConfig('ml-btm'), {
    name, runDir: join(root, 'runs'), seed: 2,
    data: data(),
    model: { arch: 'resnet8' },
    pretrain: { epochs: 3, batchSize: 32, warmupEpochs: 0, cropPadding: 0, hflip: false, mixupAlpha: 0 },
    btm: { epochs: 2, numSubsets: 3, perClass: 4, batchSize: 16, cropPadding: 0, hflip: false, evalEach: false },
    posttrain: { epochs: 1, batchSize: 32 },
    ...patch,
  });
}

describe("dataset 'multilabel-list'", () => {
  it('decodes the PNGs to the bytes written, with their label sets and multi-hot targets', async () => {
    const cfg = parseConfig(tinyConfig('load'));
    const { train, test, multiLabel } = await loadMultiLabelListSets(cfg.data);
    expect(train.numClasses).toBe(C); // inferred: the largest training label + 1
    expect(Buffer.from(train.images).equals(Buffer.from(trainSet.images))).toBe(true);
    expect(Buffer.from(test.images).equals(Buffer.from(testSet.images))).toBe(true);
    expect(multiLabel.trainSets).toEqual(trainSet.labels);
    expect(multiLabel.testSets).toEqual(testSet.labels);
    expect(Array.from(multiLabel.trainTargets.subarray(0, C))).toEqual(Array.from({ length: C }, (_, c) => (trainSet.labels[0].includes(c) ? 1 : 0)));
    expect(train.labels.every((l) => l === -1)).toBe(true);
    // a declared class count above the largest label is kept
    const wide = await loadMultiLabelListDataset({ listPath: join(root, 'test.txt'), root, size: 16, channels: 1, numClasses: 9 });
    expect(wide.set.numClasses).toBe(9);
  });

  it('ml-btm end to end: BCE pre-training -> BTM on per-class positives -> class-aware post-train, AP rows the checkpoint reproduces', async () => {
    const r = await runPipeline(tinyConfig('ml-list'));
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => [x.step, x.metric])).toEqual([['pretrain', 'ap'], ['btm-merge', 'ap'], ['posttrain', 'ap']]);
    for (const f of ['ap.svg', 'btm/merged.safetensors', 'btm/subset-2.txt', 'posttrain.safetensors']) expect(existsSync(join(r.dir, f)), f).toBe(true);
    expect(existsSync(join(r.dir, 'split.txt'))).toBe(false);
    const results = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8'));
    expect(results.split).toMatchObject({ file: null, multiLabel: true, seed: null, size: trainSet.n });
    const counts = Array.from({ length: C }, (_, c) => trainSet.labels.filter((s) => s.includes(c)).length);
    expect(results.split.counts).toEqual(counts);

    // the last row, recomputed from the saved checkpoint on the test list
    const { test, multiLabel } = await loadMultiLabelListSets(parseConfig(tinyConfig('ml-list')).data);
    const { state, meta } = await readCheckpoint(r.checkpoint!);
    const model = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, imageSize: 16 });
    model.loadStateDict(state);
    const ds = new Dataset({ ...test, targets: multiLabel.testTargets });
    const { logits } = await model.evaluate(ds, { logits: true, normalize: meta.normalize });
    const s = summarizeMultiLabel(multiLabel.testTargets, sigmoidScores(logits!), C, { trainCounts: counts });
    expect(r.rows.at(-1)!.perClassRecall).toEqual(s.perClassAP);
    expect(r.rows.at(-1)!.harmonicMean).toBeCloseTo(s.harmonicMean, 12);
    model.dispose();
    ds.dispose();

    // btm eval (no --preset: the data commands build a multi-label config on BCE losses) gives the last
    // row; a bad test list is refused there as in btm run; btm split lists the training list
    const listFlags = ['--data.dataset', 'multilabel-list', '--data.trainList', join(root, 'train.txt'), '--data.testList', join(root, 'test.txt'),
      '--data.root', root, '--data.imageSize', '16', '--data.channels', '1'];
    const ev = await btmCli('eval', r.checkpoint!, '--json', ...listFlags);
    expect(ev.stderr).toBe('');
    expect(ev.code).toBe(0);
    const e = JSON.parse(ev.stdout);
    e.perClassAP.forEach((ap: number, c: number) => expect(ap).toBeCloseTo(s.perClassAP[c], 6));
    expect(e.harmonicMean).toBeCloseTo(r.rows.at(-1)!.harmonicMean, 6);
    expect(e.numSamples).toBe(testSet.n);
    const bad = list('eval-bad.txt', testText.replace(/\t.*\n/, '\t0,9\n'));
    const evBad = await btmCli('eval', r.checkpoint!, ...listFlags.slice(0, 5), bad, ...listFlags.slice(6));
    expect(evBad.code).not.toBe(0);
    expect(evBad.stderr).toMatch(/^btm: .*eval-bad\.txt:1: label 9 out of range for 6 classes/);
    const splitFile = join(root, 'list-split.txt');
    const sp = await btmCli('split', '--out', splitFile, ...listFlags);
    expect(sp.code).toBe(0);
    expect(sp.stdout).toMatch(new RegExp(`^${trainSet.n} images .*images containing each class: ${counts.join(' ')} -> `));
    expect(readFileSync(splitFile, 'utf8').trim().split('\n').slice(1)).toEqual(trainSet.labels.map((set, i) => `${i}\t${set.join(',')}`));

    // BTM subsets: indices into the training list with its label sets, N_C positives of each class
    const lines = readFileSync(join(r.dir, 'btm', 'subset-0.txt'), 'utf8').trim().split('\n');
    for (const l of lines) expect(l.split('\t')[1]).toBe(trainSet.labels[Number(l.split('\t')[0])].join(','));
    for (let c = 0; c < C; c++) {
      expect(lines.filter((l) => l.split('\t')[1].split(',').map(Number).includes(c)).length).toBeGreaterThanOrEqual(Math.min(4, counts[c]));
    }
  });

  it("data.numClasses sets the class count of dataset 'list' too; the single-label readers refuse a multi-label set", async () => {
    const single = list('single.txt', trainText.replace(/\t(\d+)[^\n]*/g, ' $1'));
    const cfg = (numClasses: number) => parseConfig(tinyConfig('x', { data: { ...data({ dataset: 'list', trainList: single, testList: single, numClasses }), imbalanceFactor: 1 }, pipeline: ['pretrain'], pretrain: { ...tinyConfig('x').pretrain, loss: { type: 'ce' } } }));
    expect((await loadImageSets(cfg(9).data, 0)).train.numClasses).toBe(9);
    await expect(loadImageSets(cfg(2).data, 0)).rejects.toThrow(/single\.txt:\d+: label [2-5] is outside \[0, 2\)/);
    await expect(loadImageSets(parseConfig(tinyConfig('x')).data, 0)).rejects.toThrow(/dataset 'multilabel-list' is multi-label: its images have label sets, not one label \(read it with loadMultiLabelSets/);
  });

  describe('bad input is refused before the run directory is written, naming the file, line and value', () => {
    const bad = (what: string, listName: 'trainList' | 'testList', text: (t: string) => string, want: RegExp, patch: object = {}) =>
      it(what, async () => {
        const path = list(`${what.replace(/\W+/g, '-')}.txt`, text(listName === 'trainList' ? trainText : testText));
        const cfg = tinyConfig(`bad-${what.replace(/\W+/g, '-')}`, { data: data({ [listName]: path, ...patch }) });
        await expect(runPipeline(cfg)).rejects.toThrow(want);
        expect(existsSync(join(root, 'runs', cfg.name as string))).toBe(false);
      });
    const lineOf = (t: string, k: number) => t.split('\n')[k];
    bad('a test label out of the inferred range', 'testList', (t) => t.replace(/\t.*\n/, '\t2,6\n'),
      new RegExp(`test-label-out-of-the-inferred-range\\.txt:1: label 6 out of range for ${C} classes: 'img/test/0\\.png\t2,6'`));
    bad('a label out of the declared data.numClasses', 'trainList', (t) => `${t}img/train/1.png\t0,7\n`,
      /declared-data-numClasses\.txt:161: label 7 out of range for 7 classes/, { numClasses: 7 });
    bad('a declared class with no training image', 'trainList', (t) => t, /no-training-image\.txt: classes 6, 7 in no training image \(data\.numClasses = 8\): every class needs a positive/, { numClasses: 8 });
    bad('an empty label set', 'trainList', (t) => t.replace(lineOf(t, 4), 'img/train/4.png\t'), /empty-label-set\.txt:5: empty label set \(every image needs at least one label\): 'img\/train\/4\.png\t'/);
    bad('a line without a tab', 'trainList', (t) => t.replace(lineOf(t, 2), 'img/train/2.png 1,3'), /line-without-a-tab\.txt:3: missing tab .*'img\/train\/2\.png 1,3'/);
    bad('a non-integer label', 'testList', (t) => t.replace(lineOf(t, 0), 'img/test/0.png\t1,b'), /non-integer-label\.txt:1: label 'b' is not an integer/);
    bad('a missing image', 'trainList', (t) => t.replace(lineOf(t, 9), 'img/train/nope.png\t1'), /missing-image\.txt:10: cannot load image '.*img\/train\/nope\.png'/);
    bad('an empty list', 'trainList', () => '\n', /empty-list\.txt: no entries/);

    it('config errors name the key', () => {
      expect(() => parseConfig(tinyConfig('x', { data: { dataset: 'multilabel-list', root } }))).toThrow(/config\.data: dataset 'multilabel-list' needs trainList, testList, root and imageSize/);
      expect(() => parseConfig(deepMerge(tinyConfig('x'), { posttrain: { loss: { type: 'ce' } } }))).toThrow(/posttrain\.loss\.type: dataset 'multilabel-list' is multi-label/);
      expect(() => parseConfig(deepMerge(presetConfig('ml-btm'), { data: { numClasses: 5 } }))).toThrow(/config\.data\.numClasses: only datasets 'list' and 'multilabel-list' take it \(dataset 'mosaic'/);
    });

    it('data.splitFile is refused: the training list is used whole', async () => {
      await expect(runPipeline(tinyConfig('split', { data: data({ splitFile: join(root, 'train.txt') }) }))).rejects.toThrow(/data\.splitFile: dataset 'multilabel-list' is multi-label; its training set \(data\.trainList\) is used as a whole/);
    });

    it('through the CLI: a clean one-line error, exit code 1', async () => {
      const path = list('cli-bad.txt', testText.replace(/\t.*\n/, '\t0,9\n'));
      const r = await cliRunner(60_000)('run', '--preset', 'ml-btm', '--runDir', join(root, 'runs'), '--name', 'cli-bad', '--data.dataset', 'multilabel-list',
        '--data.trainList', join(root, 'train.txt'), '--data.testList', path, '--data.root', root, '--data.imageSize', '16', '--data.channels', '1');
      expect(r.stderr).toMatch(/^btm: /);
      expect(r.stderr).toMatch(/cli-bad\.txt:1: label 9 out of range for 6 classes/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.code).not.toBe(0);
      expect(existsSync(join(root, 'runs', 'cli-bad'))).toBe(false);
    });
  });

  describe('non-uniform merges score the members by per-class AP on the merge-validation set', () => {
    /** The union of the BTM subsets (the merge-validation set) and its multi-hot targets. */
    function validationOf(dir: string, numSubsets: number) {
      const idx = new Set<number>();
      for (let k = 0; k < numSubsets; k++) {
        for (const l of readFileSync(join(dir, 'btm', `subset-${k}.txt`), 'utf8').trim().split('\n')) idx.add(Number(l.split('\t')[0]));
      }
      const indices = Int32Array.from([...idx].sort((a, b) => a - b));
      const targets = new Uint8Array(indices.length * C);
      indices.forEach((i, k) => trainSet.labels[i].forEach((c) => (targets[k * C + c] = 1)));
      return { indices, targets };
    }

    /** Each member's H-AP and G-AP on the validation set, from its checkpoint. */
    async function memberScores(dir: string, numSubsets: number) {
      const { indices, targets } = validationOf(dir, numSubsets);
      const { train, multiLabel } = await loadMultiLabelListSets(parseConfig(tinyConfig('v')).data);
      const ds = new Dataset({ ...train, targets: multiLabel.trainTargets });
      const out: { harmonicMean: number; geometricMean: number; mAP: number }[] = [];
      for (let k = 0; k < numSubsets; k++) {
        const { state, meta } = await readCheckpoint(join(dir, 'btm', `finetune-${k}.safetensors`));
        const model = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, imageSize: 16 });
        model.loadStateDict(state);
        const { logits } = await model.evaluate(ds, { indices, logits: true, normalize: meta.normalize });
        out.push(summarizeMultiLabel(targets, sigmoidScores(logits!), C));
        model.dispose();
      }
      ds.dispose();
      return out;
    }

    it('adaptive-hmean (members trained together): weights proportional to each member\'s H-mean of per-class AP', async () => {
      const r = await runPipeline(tinyConfig('ml-adaptive', { btm: { ...tinyConfig('x').btm, merge: 'adaptive-hmean' } }));
      expect(r.status).toBe('complete');
      const scores = await memberScores(r.dir, 3);
      const state = JSON.parse(readFileSync(join(r.dir, 'state.json'), 'utf8'));
      for (let k = 0; k < 3; k++) {
        expect(state.scores[`btm-${k}`].harmonicMean).toBeCloseTo(scores[k].harmonicMean, 5);
        expect(state.scores[`btm-${k}`].geometricMean).toBeCloseTo(scores[k].geometricMean, 5);
        // H-AP, not mAP (on these members the two differ)
        expect(scores[k].harmonicMean).toBeLessThan(scores[k].mAP);
      }
      const merge = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8')).merges['btm-merge'];
      expect(merge.strategy).toBe('adaptive-hmean');
      adaptiveWeights(scores.map((s) => s.harmonicMean)).forEach((w, k) => expect(merge.weights[k]).toBeCloseTo(w, 5));
      expect(r.rows.find((x) => x.step === 'btm-merge')!.label).toBe('BTM merged (adaptive-hmean)');
    });

    it('greedy-gmean (members one after another): the soup starts from the member with the best G-mean of AP', async () => {
      const r = await runPipeline(tinyConfig('ml-greedy', { btm: { ...tinyConfig('x').btm, merge: 'greedy-gmean', parallel: 1 } }));
      expect(r.status).toBe('complete');
      const scores = await memberScores(r.dir, 3);
      const state = JSON.parse(readFileSync(join(r.dir, 'state.json'), 'utf8'));
      for (let k = 0; k < 3; k++) expect(state.scores[`btm-${k}`].geometricMean).toBeCloseTo(scores[k].geometricMean, 10);
      const merge = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8')).merges['btm-merge'];
      expect(merge.strategy).toBe('greedy-gmean');
      const best = scores.map((s, k) => [s.geometricMean, k]).sort((a, b) => b[0] - a[0])[0][1];
      expect(merge.members[0]).toBe(best);
      expect(merge.weights.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 12);
    });
  });
});
