import { describe, expect, it } from 'vitest';
import {
  classGroups,
  confusionMatrix,
  generalizedMean,
  groupOf,
  perClassRecall,
  summarize,
} from '../src/metrics.js';

// Tiny 3-class case.
//   class 0: 4 samples, all correct            -> recall 4/4 = 1
//   class 1: 2 samples, predicted 1 and 2      -> recall 1/2 = 0.5
//   class 2: 2 samples, predicted 1 and 0      -> recall 0/2 = 0
const labels = [0, 0, 0, 0, 1, 1, 2, 2];
const preds = [0, 0, 0, 0, 1, 2, 1, 0];

/** Rows of a confusion matrix as plain arrays, for toEqual. */
const rows = (cm: Int32Array[]) => cm.map((r) => Array.from(r));

describe('confusionMatrix / perClassRecall', () => {
  it('counts cm[true][pred] on a 3-class example', () => {
    expect(rows(confusionMatrix(labels, preds, 3))).toEqual([
      [4, 0, 0],
      [0, 1, 1],
      [1, 1, 0],
    ]);
  });

  it('gives recall = correct / support', () => {
    expect(perClassRecall(labels, preds, 3)).toEqual([1, 0.5, 0]);
  });

  it('accepts typed arrays', () => {
    expect(perClassRecall(Int32Array.from(labels), Uint8Array.from(preds), 3)).toEqual([1, 0.5, 0]);
  });

  it('gives NaN for a class absent from the labels (but predicted)', () => {
    const cm = confusionMatrix([0, 1], [0, 2], 3);
    expect(rows(cm)).toEqual([
      [1, 0, 0],
      [0, 0, 1],
      [0, 0, 0],
    ]);
    const recall = perClassRecall([0, 1], [0, 2], 3);
    expect(recall[0]).toBe(1);
    expect(recall[1]).toBe(0);
    expect(recall[2]).toBeNaN();
  });
});

describe('input validation', () => {
  it('rejects a length mismatch, naming both arguments', () => {
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(RangeError);
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/labels.*preds/);
  });

  it('rejects an out-of-range label or prediction with its index and value', () => {
    expect(() => confusionMatrix([0, 3], [0, 0], 3)).toThrow(RangeError);
    expect(() => confusionMatrix([0, 3], [0, 0], 3)).toThrow(/labels\[1\] = 3/);
    expect(() => perClassRecall([0, 1], [-1, 1], 3)).toThrow(/preds\[0\] = -1/);
  });

  it('rejects a non-integer label or prediction', () => {
    expect(() => confusionMatrix([1.5], [0], 3)).toThrow(TypeError);
    expect(() => confusionMatrix([1.5], [0], 3)).toThrow(/labels\[0\] = 1\.5/);
    expect(() => summarize([0, 1], [0, NaN], 3)).toThrow(/preds\[1\] = NaN/);
  });

  it('rejects a bad numClasses and mismatched trainCounts', () => {
    expect(() => confusionMatrix([], [], 0)).toThrow(/numClasses/);
    expect(() => confusionMatrix([], [], 2.5)).toThrow(/numClasses/);
    expect(() => summarize(labels, preds, 3, { trainCounts: [1, 2] })).toThrow(/trainCounts/);
  });

  it('rejects negative values in generalizedMean', () => {
    expect(() => generalizedMean([1, -0.5], 1)).toThrow(/values\[1\] = -0\.5/);
  });
});

describe('summarize', () => {
  const s = summarize(labels, preds, 3);

  it('reports sample accuracy and per-class recall', () => {
    expect(s.numSamples).toBe(8);
    expect(s.accuracy).toBe(5 / 8); // 4 + 1 + 0 correct of 8
    expect(s.perClassRecall).toEqual([1, 0.5, 0]);
    expect(s.absentClasses).toBe(0);
  });

  it('counts a zero recall as 1e-3 in G and H, and uses true values in the arithmetic mean', () => {
    // recalls [1, 0.5, 0]:
    //   A = (1 + 0.5 + 0) / 3 = 0.5
    //   G = (1 * 0.5 * 0.001)^(1/3) = (5e-4)^(1/3) = 0.0793700526...
    //   H = 3 / (1/1 + 1/0.5 + 1/0.001) = 3 / (1 + 2 + 1000) = 3/1003 = 0.0029910269...
    expect(s.arithmeticMean).toBeCloseTo(0.5, 12);
    expect(s.geometricMean).toBeCloseTo(0.0793700526, 9);
    expect(s.harmonicMean).toBeCloseTo(3 / 1003, 12);
  });

  it('reports the true lowest recall (0, not 0.001)', () => {
    expect(s.lowestRecall).toBe(0);
    expect(s.lowestClass).toBe(2);
    expect(s.zeroRecallClasses).toBe(1);
  });

  it('honours a custom zeroFloor', () => {
    // H = 3 / (1 + 2 + 1/0.01) = 3/103
    expect(summarize(labels, preds, 3, { zeroFloor: 0.01 }).harmonicMean).toBeCloseTo(3 / 103, 12);
  });

  it('uses plain means when no recall is zero', () => {
    // class 0: 1 of 2, class 1: 1 of 4, class 2: 1 of 1 -> recalls [0.5, 0.25, 1]
    // H = 3 / (2 + 4 + 1) = 3/7, G = (0.5 * 0.25 * 1)^(1/3) = 0.5
    const r = summarize([0, 0, 1, 1, 1, 1, 2], [0, 1, 1, 0, 0, 2, 2], 3);
    expect(r.perClassRecall).toEqual([0.5, 0.25, 1]);
    expect(r.harmonicMean).toBeCloseTo(3 / 7, 12);
    expect(r.geometricMean).toBeCloseTo(0.5, 12);
    expect(r.lowestRecall).toBe(0.25);
    expect(r.lowestClass).toBe(1);
    expect(r.zeroRecallClasses).toBe(0);
  });

  it('excludes a class absent from the eval labels from every mean and counts it', () => {
    // 4 classes, class 3 never appears as a label (it is predicted once).
    // recalls [1, 0, 0.5, NaN]; means over the 3 present classes:
    //   A = 1.5/3 = 0.5, G = (1 * 0.001 * 0.5)^(1/3), H = 3 / (1 + 1000 + 2) = 3/1003
    const r = summarize([0, 1, 2, 2], [0, 3, 2, 1], 4);
    expect(r.perClassRecall.slice(0, 3)).toEqual([1, 0, 0.5]);
    expect(r.perClassRecall[3]).toBeNaN();
    expect(r.absentClasses).toBe(1);
    expect(r.accuracy).toBe(0.5);
    expect(r.arithmeticMean).toBeCloseTo(0.5, 12);
    expect(r.geometricMean).toBeCloseTo(Math.cbrt(5e-4), 12);
    expect(r.harmonicMean).toBeCloseTo(3 / 1003, 12);
    expect(r.lowestRecall).toBe(0);
    expect(r.lowestClass).toBe(1);
  });

  it('omits the many/medium/few split without trainCounts', () => {
    expect(s.many).toBeUndefined();
    expect(s.medium).toBeUndefined();
    expect(s.few).toBeUndefined();
  });

  it('splits many/medium/few by training counts at the boundaries', () => {
    // trainCounts [500, 101, 100, 20, 19] -> many, many, medium, medium, few
    // recalls: c0 2/2 = 1, c1 1/2 = 0.5, c2 1/2 = 0.5, c3 0/1 = 0, c4 1/4 = 0.25
    //   many   = mean(1, 0.5)  = 0.75 (2 classes)
    //   medium = mean(0.5, 0)  = 0.25 (2 classes)
    //   few    = 0.25               (1 class)
    const l = [0, 0, 1, 1, 2, 2, 3, 4, 4, 4, 4];
    const p = [0, 0, 1, 0, 2, 3, 4, 4, 0, 0, 0];
    const r = summarize(l, p, 5, { trainCounts: [500, 101, 100, 20, 19] });
    expect(r.perClassRecall).toEqual([1, 0.5, 0.5, 0, 0.25]);
    expect(r.many).toEqual({ recall: 0.75, numClasses: 2 });
    expect(r.medium).toEqual({ recall: 0.25, numClasses: 2 });
    expect(r.few).toEqual({ recall: 0.25, numClasses: 1 });
  });

  it('gives null for an empty group and skips absent classes inside a group', () => {
    // all classes are 'many'; class 2 is absent from the eval set -> many = mean(1, 0.5) over 3 classes
    const r = summarize([0, 1, 1], [0, 1, 0], 3, { trainCounts: [200, 300, 400] });
    expect(r.many).toEqual({ recall: 0.75, numClasses: 3 });
    expect(r.medium).toBeNull();
    expect(r.few).toBeNull();
  });

  it('honours custom thresholds', () => {
    // many > 10, few < 5: counts [11, 10, 5, 4] -> many, medium, medium, few
    const r = summarize([0, 1, 2, 3], [0, 1, 0, 3], 4, {
      trainCounts: [11, 10, 5, 4],
      manyThreshold: 10,
      fewThreshold: 5,
    });
    expect(r.many).toEqual({ recall: 1, numClasses: 1 });
    expect(r.medium).toEqual({ recall: 0.5, numClasses: 2 });
    expect(r.few).toEqual({ recall: 1, numClasses: 1 });
  });
});

describe('generalizedMean', () => {
  const v = [0.2, 0.5, 0.9];
  const arithmetic = (0.2 + 0.5 + 0.9) / 3; // 0.5333...
  const geometric = Math.cbrt(0.2 * 0.5 * 0.9); // 0.09^(1/3) = 0.4481...
  const harmonic = 3 / (1 / 0.2 + 1 / 0.5 + 1 / 0.9); // 3 / 8.111... = 0.3698...

  it('p = 1, 0, -1 are the arithmetic, geometric and harmonic means', () => {
    expect(generalizedMean(v, 1)).toBeCloseTo(arithmetic, 12);
    expect(generalizedMean(v, 0)).toBeCloseTo(geometric, 12);
    expect(generalizedMean(v, -1)).toBeCloseTo(harmonic, 12);
    expect(generalizedMean(v, 2)).toBeCloseTo(Math.sqrt((0.04 + 0.25 + 0.81) / 3), 12);
  });

  it('p = ±Infinity are min and max; large |p| approaches them', () => {
    expect(generalizedMean(v, -Infinity)).toBe(0.2);
    expect(generalizedMean(v, Infinity)).toBe(0.9);
    // p = -200: 0.2 * (1/3 + tiny)^(-1/200) ~ 0.2 * 3^(1/200) ~ 0.2011
    const m200 = generalizedMean(v, -200);
    expect(m200).toBeGreaterThan(0.2);
    expect(m200).toBeLessThan(0.202);
    // no overflow for a very large |p| (0.2^-1e4 alone would be Infinity, 0.9^1e4 is ~1e-458):
    // M_p -> extreme * 3^(-1/p), the other two terms vanishing
    expect(generalizedMean(v, -1e4)).toBeCloseTo(0.2 * 3 ** (1 / 1e4), 12);
    expect(generalizedMean(v, 1e4)).toBeCloseTo(0.9 * 3 ** (-1 / 1e4), 12);
  });

  it('is monotone in p', () => {
    const ps = [-Infinity, -10, -1, 0, 1, 10, Infinity];
    const ms = ps.map((p) => generalizedMean(v, p));
    for (let i = 1; i < ms.length; i++) expect(ms[i]).toBeGreaterThan(ms[i - 1]);
  });

  it('applies the zero floor only for p <= 0, and only to exact zeros', () => {
    expect(generalizedMean([0, 1], 1)).toBe(0.5);
    expect(generalizedMean([0, 1], 2)).toBeCloseTo(Math.sqrt(0.5), 12);
    expect(generalizedMean([0, 1], 0)).toBeCloseTo(Math.sqrt(0.001), 12);
    expect(generalizedMean([0, 1], -1)).toBeCloseTo(2 / 1001, 12);
    expect(generalizedMean([0, 1], -Infinity)).toBe(0.001);
    expect(generalizedMean([0, 1], -1, 0.1)).toBeCloseTo(2 / 11, 12);
    // a positive recall below the floor is kept (eval.py only replaces zeros)
    expect(generalizedMean([5e-4, 1], 0)).toBeCloseTo(Math.sqrt(5e-4), 12);
    // zeroFloor 0 disables the floor: the means collapse to 0
    expect(generalizedMean([0, 1], 0, 0)).toBe(0);
    expect(generalizedMean([0, 1], -1, 0)).toBe(0);
  });

  it('computes the geometric mean through logs (no underflow)', () => {
    // the product 1e-5^1000 = 1e-5000 underflows to 0 in doubles
    const tiny = new Array<number>(1000).fill(1e-5);
    expect(generalizedMean(tiny, 0) / 1e-5).toBeCloseTo(1, 10);
  });

  it('returns NaN for no values', () => {
    expect(generalizedMean([], 1)).toBeNaN();
    expect(generalizedMean([], 0)).toBeNaN();
  });
});

describe('groupOf / classGroups', () => {
  it('puts the defaults boundaries where LT papers do (>100 many, <20 few)', () => {
    expect(groupOf(101)).toBe('many');
    expect(groupOf(100)).toBe('medium');
    expect(groupOf(20)).toBe('medium');
    expect(groupOf(19)).toBe('few');
    expect(groupOf(0)).toBe('few');
  });

  it('takes custom thresholds', () => {
    expect(groupOf(51, 50, 10)).toBe('many');
    expect(groupOf(50, 50, 10)).toBe('medium');
    expect(groupOf(9, 50, 10)).toBe('few');
  });

  it('maps every class', () => {
    expect(classGroups([1000, 101, 100, 20, 19, 1])).toEqual([
      'many',
      'many',
      'medium',
      'medium',
      'few',
      'few',
    ]);
    expect(classGroups(Int32Array.of(5, 15), 10, 8)).toEqual(['few', 'many']);
  });

  it('rejects bad counts and crossed thresholds', () => {
    expect(() => classGroups([10, -1])).toThrow(/trainCounts\[1\] = -1/);
    expect(() => classGroups([10], 5, 50)).toThrow(/fewThreshold/);
  });
});
