import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/sampling/rng.js';
import {
  btmSubsets,
  classAwareEpoch,
  groupByClass,
  sampleWithoutReplacement,
  uniformEpoch,
} from '../../src/sampling/samplers.js';

/** Labels with the given number of samples per class, classes interleaved in a fixed scrambled order. */
function labelsWithSizes(sizes: readonly number[]): Int32Array {
  const labels = sizes.flatMap((n, c) => new Array<number>(n).fill(c));
  return new Rng(99).shuffle(Int32Array.from(labels));
}

const all = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

describe('groupByClass', () => {
  it('groups indices by label, keeping their order', () => {
    const groups = groupByClass([4, 0, 3, 1], [0, 1, 0, 2, 1], 4);
    expect(groups.map((g) => Array.from(g))).toEqual([[0], [4, 1], [3], []]);
    expect(() => groupByClass([5], [0, 1, 0, 2, 1], 4)).toThrow(/index 5/);
    expect(() => groupByClass([3], [0, 1, 0, 2, 1], 2)).toThrow(/label 2 of sample 3/);
  });
});

describe('uniformEpoch', () => {
  it('returns a reproducible shuffled copy', () => {
    const indices = Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17]);
    const epoch = uniformEpoch(indices, new Rng(1));
    expect(Array.from(indices)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    expect(Array.from(epoch).sort((a, b) => a - b)).toEqual(Array.from(indices));
    expect(uniformEpoch(indices, new Rng(1))).toEqual(epoch);
    expect(uniformEpoch(indices, new Rng(2))).not.toEqual(epoch);
  });
});

describe('classAwareEpoch', () => {
  // Class 0 has 5000 images, classes 1-8 have 2-100, class 9 has none.
  const sizes = [5000, 100, 50, 20, 10, 5, 4, 3, 2, 0];
  const labels = labelsWithSizes(sizes);
  const byClass = groupByClass(all(labels.length), labels, sizes.length);

  it('draws the non-empty classes (nearly) uniformly from a very imbalanced set', () => {
    const numSamples = 9_001;
    const epoch = classAwareEpoch(byClass, numSamples, new Rng(5));
    expect(epoch).toHaveLength(numSamples);
    const perClass = new Array(sizes.length).fill(0);
    for (const i of epoch) perClass[labels[i]]++;
    expect(perClass[9]).toBe(0);
    const drawn = perClass.slice(0, 9);
    // Every class is visited once per cycle of the class list, 4 samples per visit.
    expect(Math.max(...drawn) - Math.min(...drawn)).toBeLessThanOrEqual(4);
    expect(Math.min(...drawn)).toBeGreaterThanOrEqual(996);
  });

  it('emits blocks of perClass samples of one class and cycles within a class', () => {
    const epoch = classAwareEpoch(byClass, 3_000, new Rng(6), { perClass: 3 });
    for (let k = 0; k < epoch.length; k += 3) {
      expect(new Set(Array.from(epoch.subarray(k, k + 3), (i) => labels[i])).size).toBe(1);
    }
    // Class 8 has two images: the per-class cycle uses them equally often.
    const uses = new Map<number, number>();
    for (const i of epoch) if (labels[i] === 8) uses.set(i, (uses.get(i) ?? 0) + 1);
    const [a, b] = [...uses.values()];
    expect(uses.size).toBe(2);
    expect(Math.abs(a - b)).toBeLessThanOrEqual(1);
  });

  it('is reproducible and checks its arguments', () => {
    expect(classAwareEpoch(byClass, 500, new Rng(7))).toEqual(classAwareEpoch(byClass, 500, new Rng(7)));
    expect(classAwareEpoch(byClass, 500, new Rng(7))).not.toEqual(classAwareEpoch(byClass, 500, new Rng(8)));
    expect(classAwareEpoch(byClass, 0, new Rng(7))).toHaveLength(0);
    expect(() => classAwareEpoch(byClass, 10, new Rng(7), { perClass: 0 })).toThrow(/perClass/);
    expect(() => classAwareEpoch([new Int32Array(0)], 10, new Rng(7))).toThrow(/every class is empty/);
  });
});

describe('btmSubsets', () => {
  const sizes = [300, 40, 10, 7, 1, 0];
  const labels = labelsWithSizes(sizes);
  const byClass = groupByClass(all(labels.length), labels, sizes.length);
  const subsetClassCounts = (subset: Int32Array): number[] => {
    const counts = new Array(sizes.length).fill(0);
    for (const i of subset) counts[labels[i]]++;
    return counts;
  };

  it('takes min(N_C, n_c) distinct images per class and reports short classes', () => {
    const { subsets, shortClasses } = btmSubsets(byClass, {}, new Rng(0));
    expect(subsets).toHaveLength(10); // N_D default
    expect(shortClasses).toEqual([3, 4, 5]);
    for (const subset of subsets) {
      expect(new Set(subset).size).toBe(subset.length); // no replacement
      expect(subsetClassCounts(subset)).toEqual([10, 10, 10, 7, 1, 0]); // N_C default 10
    }
    const small = btmSubsets(byClass, { numSubsets: 2, perClass: 3 }, new Rng(0));
    expect(small.subsets.map(subsetClassCounts)).toEqual([
      [3, 3, 3, 3, 1, 0],
      [3, 3, 3, 3, 1, 0],
    ]);
    expect(small.shortClasses).toEqual([4, 5]);
  });

  it('is reproducible, differs by seed and by subset, and subset k does not depend on N_D', () => {
    const opts = { numSubsets: 4, perClass: 5 };
    const a = btmSubsets(byClass, opts, new Rng(11)).subsets;
    expect(btmSubsets(byClass, opts, new Rng(11)).subsets).toEqual(a);
    expect(btmSubsets(byClass, opts, new Rng(12)).subsets[0]).not.toEqual(a[0]);
    expect(a[1]).not.toEqual(a[0]);
    const more = btmSubsets(byClass, { ...opts, numSubsets: 9 }, new Rng(11)).subsets;
    expect(more.slice(0, 4)).toEqual(a);
  });

  it('checks its options', () => {
    expect(() => btmSubsets(byClass, { numSubsets: 0 }, new Rng(0))).toThrow(/numSubsets/);
    expect(() => btmSubsets(byClass, { perClass: 1.5 }, new Rng(0))).toThrow(/perClass/);
  });
});

describe('sampleWithoutReplacement', () => {
  it('includes every pool item equally often', () => {
    const rng = new Rng(13);
    const hits = new Array(10).fill(0);
    for (let k = 0; k < 20_000; k++) for (const x of sampleWithoutReplacement(all(10), 3, rng)) hits[x]++;
    // Each item is included with probability 3/10: 6000 expected, sd ~ 65.
    for (const h of hits) expect(Math.abs(h - 6000)).toBeLessThan(400);
  });
});
