import { describe, expect, it } from 'vitest';
import {
  classCounts,
  formatSplitList,
  longTailCounts,
  makeLongTailSplit,
  parseSplitList,
} from '../../src/sampling/longtail.js';

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const isNonIncreasing = (xs: readonly number[]): boolean => xs.every((x, i) => i === 0 || x <= xs[i - 1]);

/** A balanced toy dataset: `perClass` samples of each class, labels interleaved 0,1,..,C-1,0,1,... */
const balancedLabels = (numClasses: number, perClass: number): Int32Array =>
  Int32Array.from({ length: numClasses * perClass }, (_, i) => i % numClasses);

describe('longTailCounts', () => {
  it('exp profile reproduces the CIFAR-LT counts', () => {
    const c10 = longTailCounts({ numClasses: 10, maxPerClass: 5000, imbalanceFactor: 100, profile: 'exp' });
    // floor(5000 * 0.01^(i/9)), computed independently (Python int(5000 * 0.01 ** (i / 9.0))).
    expect(c10).toEqual([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    expect(sum(c10)).toBe(12406);
    const c10if10 = longTailCounts({ numClasses: 10, maxPerClass: 5000, imbalanceFactor: 10, profile: 'exp' });
    expect(c10if10).toEqual([5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]);
    const c100 = longTailCounts({ numClasses: 100, maxPerClass: 500, imbalanceFactor: 100, profile: 'exp' });
    expect([c100[0], c100[99], sum(c100)]).toEqual([500, 5, 10847]);
    for (const counts of [c10, c10if10, c100]) expect(isNonIncreasing(counts)).toBe(true);
    for (const IF of [10, 20, 50, 100, 200]) {
      const counts = longTailCounts({ numClasses: 10, maxPerClass: 5000, imbalanceFactor: IF, profile: 'exp' });
      expect([counts[0], counts[9]]).toEqual([5000, Math.floor(5000 / IF)]);
    }
    expect(longTailCounts({ numClasses: 3, maxPerClass: 7, imbalanceFactor: 1, profile: 'exp' })).toEqual([7, 7, 7]);
  });

  it('step profile: majority classes first with n_max, minority with floor(n_max / IF)', () => {
    const step = (numClasses: number, stepMinorFraction?: number): number[] =>
      longTailCounts({ numClasses, maxPerClass: 5000, imbalanceFactor: 10, profile: 'step', stepMinorFraction });
    expect(step(10)).toEqual([5000, 5000, 5000, 5000, 5000, 500, 500, 500, 500, 500]);
    expect(step(5)).toEqual([5000, 5000, 500, 500, 500]); // odd C: the extra class is minority
    expect(step(10, 0.3)).toEqual([5000, 5000, 5000, 5000, 5000, 5000, 5000, 500, 500, 500]);
    expect(step(10, 0.01)).toEqual([...new Array(9).fill(5000), 500]);
    expect(() => step(10, 0.95)).toThrow(/no majority class/);
  });

  it('clamps round-off to at least one image', () => {
    // 49 * (1 / 49) is 0.9999999999999999 in floating point.
    const counts = longTailCounts({ numClasses: 4, maxPerClass: 49, imbalanceFactor: 49, profile: 'exp' });
    expect(counts[3]).toBe(1);
  });

  it('rejects bad arguments with a RangeError naming the field', () => {
    const ok = { numClasses: 10, maxPerClass: 100, imbalanceFactor: 10, profile: 'exp' } as const;
    const cases: [object, RegExp][] = [
      [{ numClasses: 1 }, /numClasses/],
      [{ numClasses: 2.5 }, /numClasses/],
      [{ maxPerClass: 0 }, /maxPerClass/],
      [{ imbalanceFactor: 0.5 }, /imbalanceFactor/],
      [{ imbalanceFactor: 101 }, /imbalanceFactor/],
      [{ imbalanceFactor: NaN }, /imbalanceFactor/],
      [{ profile: 'linear' }, /profile/],
      [{ profile: 'step', stepMinorFraction: 1 }, /stepMinorFraction/],
      [{ profile: 'step', stepMinorFraction: 0 }, /stepMinorFraction/],
    ];
    for (const [patch, field] of cases) {
      const call = (): number[] => longTailCounts({ ...ok, ...patch } as typeof ok);
      expect(call).toThrow(RangeError);
      expect(call).toThrow(field);
    }
  });
});

describe('makeLongTailSplit / classCounts', () => {
  const labels = balancedLabels(5, 200);
  const counts = longTailCounts({ numClasses: 5, maxPerClass: 200, imbalanceFactor: 20, profile: 'exp' });

  it('takes exactly counts[c] distinct images of each class, sorted ascending', () => {
    const split = makeLongTailSplit(labels, 5, counts, 0);
    expect(split.counts).toEqual(counts);
    expect(classCounts(labels, split.indices, 5)).toEqual(counts);
    expect(new Set(split.indices).size).toBe(split.indices.length);
    expect(Array.from(split.indices)).toEqual(Array.from(split.indices).sort((a, b) => a - b));
  });

  it('is reproducible from the seed, and nested across imbalance factors', () => {
    const a = makeLongTailSplit(labels, 5, counts, 1);
    expect(makeLongTailSplit(labels, 5, counts, 1).indices).toEqual(a.indices);
    expect(makeLongTailSplit(labels, 5, counts, 2).indices).not.toEqual(a.indices);
    const steeper = longTailCounts({ numClasses: 5, maxPerClass: 200, imbalanceFactor: 100, profile: 'exp' });
    const inner = makeLongTailSplit(labels, 5, steeper, 1);
    const outer = new Set(a.indices);
    expect(Array.from(inner.indices).every((i) => outer.has(i))).toBe(true);
  });

  it('names the class that has too few images, and checks labels and counts', () => {
    expect(() => makeLongTailSplit(labels, 5, [200, 201, 1, 1, 1], 0)).toThrow(/class 1 has 200 images/);
    expect(() => makeLongTailSplit(labels, 5, [1, 1, 1, 1], 0)).toThrow(/numClasses/);
    expect(() => makeLongTailSplit(labels, 5, [1, 1, -1, 1, 1], 0)).toThrow(/counts\[2\]/);
    expect(() => makeLongTailSplit(labels, 4, [1, 1, 1, 1], 0)).toThrow(/label 4/);
  });

  it('classCounts counts all labels or a subset of indices', () => {
    expect(classCounts([0, 2, 2, 1, 2], undefined, 4)).toEqual([1, 1, 3, 0]);
    expect(classCounts([0, 2, 2, 1, 2], [1, 3], 4)).toEqual([0, 1, 1, 0]);
    expect(() => classCounts([0, 1], [2], 2)).toThrow(/index 2/);
  });
});

describe('split list files', () => {
  const labels = balancedLabels(4, 50);
  const meta = { numClasses: 4, seed: 3, profile: 'exp', imbalanceFactor: 10 } as const;
  const split = makeLongTailSplit(labels, 4, longTailCounts({ ...meta, maxPerClass: 50 }), meta.seed);

  it('round-trips through text with a header that records the run', () => {
    const text = formatSplitList(split.indices, labels, meta);
    const [header, first] = text.split('\n');
    expect(header).toBe(
      `# btm-split dataset_size=200 num_classes=4 samples=${split.indices.length} seed=3 profile=exp imbalance_factor=10`,
    );
    expect(first).toBe(`${split.indices[0]} ${labels[split.indices[0]]}`);
    const parsed = parseSplitList(text, { source: 'train.txt', numClasses: 4, datasetLabels: labels });
    expect(parsed.indices).toEqual(split.indices);
    expect(parsed.labels).toEqual(Int32Array.from(split.indices, (i) => labels[i]));
  });

  it('accepts CRLF, blank lines and comments', () => {
    const parsed = parseSplitList('# header\r\n\r\n5 1\r\n  # note\r\n7 0\r\n', { source: 'x.txt' });
    expect(Array.from(parsed.indices)).toEqual([5, 7]);
    expect(Array.from(parsed.labels)).toEqual([1, 0]);
  });

  it('reports the file name and line number of a bad line', () => {
    const body = '# btm-split\n0 0\n1 1\n';
    const options = { source: 'lt.txt', numClasses: 2, datasetSize: 10 };
    const cases: [string, RegExp][] = [
      ['2 x', /^lt\.txt:4: expected "<index> <label>", got "2 x"$/],
      ['2', /^lt\.txt:4: expected/],
      ['2 1 7', /^lt\.txt:4: expected/],
      ['-2 1', /^lt\.txt:4: expected/],
      ['2.5 1', /^lt\.txt:4: expected/],
      ['10 1', /^lt\.txt:4: index 10 is outside the dataset \[0, 10\)/],
      ['2 2', /^lt\.txt:4: label 2 is outside \[0, 2\)/],
      ['1 0', /^lt\.txt:4: index 1 is already listed on line 3/],
    ];
    for (const [line, message] of cases) expect(() => parseSplitList(body + line, options)).toThrow(message);
    expect(() => parseSplitList(body + '\n\n3 0', { source: 'lt.txt', datasetLabels: [0, 1, 0, 1] })).toThrow(
      /^lt\.txt:6: label 0 of index 3 does not match the dataset label 1/,
    );
  });

  it('formatSplitList rejects indices outside the dataset', () => {
    expect(() => formatSplitList([0, 200], labels, meta)).toThrow(/index 200/);
  });
});
