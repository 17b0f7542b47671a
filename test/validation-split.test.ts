// The validation split (data.valPerClass): carved per class from the training set, seeded, disjoint from
// the long-tailed split the stages train on, and evaluated next to the test set.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.js';
import { gridTask } from '../src/data/synthetic.js';
import { longTailSplit } from '../src/pipeline/data.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';
import { classCounts, formatSplitList, longTailCounts, makeLongTailSplit, makeValidationSplit, parseSplitList } from '../src/sampling/longtail.js';
import { aggregateRuns, formatAggregate, readRuns } from '../src/report/aggregate.js';

const root = mkdtempSync(join(tmpdir(), 'btm-val-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** 5 classes of unequal size (class c has 40 + 7c images), labels shuffled over the indices. */
function labelsOf(): Int32Array {
  const l: number[] = [];
  for (let c = 0; c < 5; c++) for (let k = 0; k < 40 + 7 * c; k++) l.push(c);
  // a fixed interleaving so classes are not contiguous
  return Int32Array.from(l.map((c, i) => [c, (i * 7919) % l.length] as const).sort((a, b) => a[1] - b[1]).map(([c]) => c));
}

const dataCfg = (patch: object = {}) => parseConfig(deepMerge(presetConfig('ce'), { name: 'x', data: { dataset: 'synthetic', imbalanceFactor: 10, ...patch } })).data;

describe('makeValidationSplit', () => {
  const labels = labelsOf();
  it('holds perClass images of every class, disjoint from the rest, the two covering the pool', () => {
    const { val, rest } = makeValidationSplit(labels, 5, 6, 1);
    expect(classCounts(labels, val, 5)).toEqual([6, 6, 6, 6, 6]);
    expect(classCounts(labels, rest, 5)).toEqual([34, 41, 48, 55, 62]);
    const inVal = new Set(val);
    expect(Array.from(rest).some((i) => inVal.has(i))).toBe(false);
    expect([...val, ...rest].sort((a, b) => a - b)).toEqual(Array.from({ length: labels.length }, (_, i) => i));
    expect(Array.from(val)).toEqual([...val].sort((a, b) => a - b));
  });

  it('is the same for the same seed and differs for another', () => {
    const a = makeValidationSplit(labels, 5, 6, 1).val;
    expect(Array.from(makeValidationSplit(labels, 5, 6, 1).val)).toEqual(Array.from(a));
    expect(Array.from(makeValidationSplit(labels, 5, 6, 2).val)).not.toEqual(Array.from(a));
  });

  it('draws only from the given pool, and is empty for perClass 0', () => {
    const pool = Int32Array.from({ length: labels.length }, (_, i) => i).filter((i) => i % 2 === 0);
    const { val, rest } = makeValidationSplit(labels, 5, 3, 0, pool);
    expect(Array.from(val).every((i) => i % 2 === 0)).toBe(true);
    expect(val.length + rest.length).toBe(pool.length);
    const none = makeValidationSplit(labels, 5, 0, 0);
    expect(none.val.length).toBe(0);
    expect(none.rest.length).toBe(labels.length);
  });

  it('names the class that has too few images', () => {
    expect(() => makeValidationSplit(labels, 5, 41, 0)).toThrow('class 0 has 40 images, fewer than the 41 requested');
  });
});

describe('longTailSplit with data.valPerClass', () => {
  const train = gridTask({ n: 4 * 200, numClasses: 4, size: 16, seed: 0 });

  it('with the default 0 gives the split of before (no validation images)', () => {
    const d = dataCfg();
    expect(d.valPerClass).toBe(0);
    const { split, val } = longTailSplit(d, train);
    const counts = longTailCounts({ numClasses: 4, maxPerClass: 200, imbalanceFactor: 10, profile: 'exp' });
    expect(Array.from(split)).toEqual(Array.from(makeLongTailSplit(train.labels, 4, counts, 0).indices));
    expect(val.length).toBe(0);
  });

  it('carves valPerClass images per class first, and draws the long-tailed split from the rest', () => {
    const a = longTailSplit(dataCfg({ valPerClass: 25 }), train);
    expect(classCounts(train.labels, a.val, 4)).toEqual([25, 25, 25, 25]);
    // n_max defaults to the smallest class left after carving: 200 - 25
    expect(a.counts).toEqual(longTailCounts({ numClasses: 4, maxPerClass: 175, imbalanceFactor: 10, profile: 'exp' }));
    expect(classCounts(train.labels, a.split, 4)).toEqual(a.counts);
    const inVal = new Set(a.val);
    expect(Array.from(a.split).filter((i) => inVal.has(i))).toEqual([]);
    // deterministic from data.splitSeed, and another seed moves it
    const b = longTailSplit(dataCfg({ valPerClass: 25 }), train);
    expect(Array.from(b.val)).toEqual(Array.from(a.val));
    expect(Array.from(b.split)).toEqual(Array.from(a.split));
    expect(Array.from(longTailSplit(dataCfg({ valPerClass: 25, splitSeed: 5 }), train).val)).not.toEqual(Array.from(a.val));
  });

  it('with a split file, draws the validation images from those the file leaves out', () => {
    const { split } = longTailSplit(dataCfg({ maxPerClass: 150 }), train);
    const file = join(root, 'split.txt');
    writeFileSync(file, formatSplitList(split, train.labels, { numClasses: 4, seed: 0, profile: 'exp', imbalanceFactor: 10 }));
    const r = longTailSplit(dataCfg({ valPerClass: 10, splitFile: file }), train);
    expect(Array.from(r.split)).toEqual(Array.from(split));
    expect(classCounts(train.labels, r.val, 4)).toEqual([10, 10, 10, 10]);
    const inSplit = new Set(split);
    expect(Array.from(r.val).filter((i) => inSplit.has(i))).toEqual([]);
    // the default n_max puts all 200 images of class 0 in the split: none left to hold out
    const full = join(root, 'full.txt');
    writeFileSync(full, formatSplitList(longTailSplit(dataCfg(), train).split, train.labels, { numClasses: 4, seed: 0, profile: 'exp', imbalanceFactor: 10 }));
    expect(() => longTailSplit(dataCfg({ valPerClass: 1, splitFile: full }), train)).toThrow(`data.valPerClass: 1 validation images per class requested, but class 0 has only 0 training images outside ${full}`);
  });

  it('a bad value is an error naming the key and the value', () => {
    expect(() => dataCfg({ valPerClass: -1 })).toThrow(ConfigError);
    expect(() => dataCfg({ valPerClass: -1 })).toThrow(/config\.data\.valPerClass: Too small.*, got -1/);
    expect(() => dataCfg({ valPerClass: 2.5 })).toThrow(/config\.data\.valPerClass: .*, got 2\.5/);
    expect(() => dataCfg({ valPerClass: 'ten' })).toThrow(/config\.data\.valPerClass: .*, got "ten"/);
    expect(() => longTailSplit(dataCfg({ valPerClass: 201 }), train)).toThrow('data.valPerClass: 201 validation images per class requested, but class 0 has only 200 training images');
    // leaves fewer images than the imbalance factor needs
    expect(() => longTailSplit(dataCfg({ valPerClass: 195 }), train)).toThrow(/data\.valPerClass: 195 validation images per class leave 5 in the smallest class: imbalanceFactor must be a number in \[1, maxPerClass = 5\], got 10/);
    expect(() => parseConfig(deepMerge(presetConfig('ml-ce'), { name: 'x', data: { valPerClass: 3 } }))).toThrow(/config\.data\.valPerClass: dataset 'mosaic' is multi-label/);
  });
});

describe('a run with a validation split', () => {
  it('trains on none of its images, writes val.txt, and reports validation metrics next to the test metrics', async () => {
    const cfg = deepMerge(presetConfig('btm'), {
      name: 'val-s0', runDir: root, seed: 1,
      data: { dataset: 'synthetic', imbalanceFactor: 10, valPerClass: 15, synthetic: { numClasses: 4, size: 16, trainPerClass: 120, testPerClass: 20 } },
      model: { arch: 'resnet8' },
      pretrain: { epochs: 1, batchSize: 32, warmupEpochs: 0 },
      btm: { epochs: 1, numSubsets: 2, perClass: 8, batchSize: 8 },
      posttrain: { epochs: 1, batchSize: 32 },
    });
    const r = await runPipeline(cfg);
    expect(r.status).toBe('complete');
    const labels = gridTask({ n: 4 * 120, numClasses: 4, size: 16, seed: 2 }).labels; // synthetic train set: seed * 2
    const read = (f: string) => parseSplitList(readFileSync(join(r.dir, f), 'utf8'), { source: f, numClasses: 4, datasetLabels: labels }).indices;
    const val = read('val.txt');
    expect(classCounts(labels, val, 4)).toEqual([15, 15, 15, 15]);
    const inVal = new Set(val);
    for (const f of ['split.txt', 'btm/subset-0.txt', 'btm/subset-1.txt']) {
      expect(Array.from(read(f)).filter((i) => inVal.has(i)), f).toEqual([]);
    }
    for (const row of r.rows) {
      expect(row.val, row.label).toBeDefined();
      expect(row.val!.harmonicMean).toBeGreaterThanOrEqual(0);
      expect(row.val!.accuracy).toBeLessThanOrEqual(1);
    }
    const results = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8'));
    expect(results.split.val).toEqual({ file: 'val.txt', perClass: 15, size: 60 });
    // the report of either set; the validation metrics differ from the test set's
    const runs = readRuns([r.dir]);
    const testRows = aggregateRuns(runs), valRows = aggregateRuns(runs, 'val');
    expect(valRows.map((x) => x.mean.accuracy)).toEqual(r.rows.map((x) => x.val!.accuracy));
    expect(testRows.map((x) => x.mean.accuracy)).toEqual(r.rows.map((x) => x.accuracy));
    expect(formatAggregate(valRows)).toMatch(/many %\s+medium %\s+few %/);
  }, 120_000);

  it('the report of the validation set refuses runs without one', () => {
    const rows = [{ step: 'pretrain', stage: 'pretrain', label: 'pre-train', accuracy: 1, arithmeticMean: 1, geometricMean: 1, harmonicMean: 1,
      lowestRecall: 1, lowestClass: 0, zeroRecallClasses: 0, many: null, medium: null, few: null, perClassRecall: [], trainSeconds: 0 }];
    expect(() => aggregateRuns([{ name: 'ce-s0', rows }], 'val')).toThrow("run ce-s0, row 'pre-train': no validation metrics");
  });
});
