// Multi-label metrics: AP by hand, AP against a second formula (mean precision at each positive's
// rank, equal to it when no scores tie), and the summary's means, minimum and many/medium/few split.
import { describe, expect, it } from 'vitest';
import { averagePrecision, summarizeMultiLabel } from '../src/metrics-multilabel.js';
import { Rng } from '../src/sampling/rng.js';

describe('averagePrecision', () => {
  it('hand-computed values', () => {
    // ranks: + - + - : P@1 = 1 (R .5), P@3 = 2/3 (R 1) -> .5 * 1 + .5 * 2/3
    expect(averagePrecision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])).toBeCloseTo(0.5 + 1 / 3, 12);
    // perfect ranking, and the worst one
    expect(averagePrecision([3, 2, 1], [1, 1, 0])).toBe(1);
    expect(averagePrecision([3, 2, 1], [0, 0, 1])).toBeCloseTo(1 / 3, 12);
    // a tie enters as one threshold: {0.5, 0.5} holds 1 of 2 -> P .5 at R .5; then P 2/3 at R 1
    expect(averagePrecision([0.5, 0.5, 0.1], [1, 0, 1])).toBeCloseTo(0.25 + 1 / 3, 12);
    expect(averagePrecision([1, 2], [0, 0])).toBeNaN();
  });

  it('equals the mean precision at the positives ranks when no scores tie (random cases)', () => {
    const rng = new Rng(5);
    for (let trial = 0; trial < 50; trial++) {
      const n = 5 + rng.int(40);
      const scores = Array.from({ length: n }, () => rng.nextFloat());
      const pos = Array.from({ length: n }, () => (rng.nextFloat() < 0.3 ? 1 : 0));
      if (!pos.some((p) => p)) pos[0] = 1;
      const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
      let tp = 0, sum = 0;
      order.forEach((i, rank) => {
        if (pos[i]) {
          tp++;
          sum += tp / (rank + 1);
        }
      });
      expect(averagePrecision(scores, pos)).toBeCloseTo(sum / tp, 12);
    }
  });

  it('refuses non-finite scores and mismatched lengths', () => {
    expect(() => averagePrecision([NaN], [1])).toThrow(/scores\[0\] = NaN is not finite/);
    expect(() => averagePrecision([1, 2], [1])).toThrow(/2 scores but 1 labels/);
  });
});

describe('summarizeMultiLabel', () => {
  // 4 samples x 3 classes; class 2 has no positive in this set
  const targets = [1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0];
  const scores = [0.9, 0.1, 0.3, 0.2, 0.8, 0.5, 0.4, 0.7, 0.2, 0.1, 0.9, 0.6];
  it('per-class AP, mAP, means, minimum and groups', () => {
    const s = summarizeMultiLabel(targets, scores, 3, { trainCounts: [500, 50, 5] });
    // class 0: scores .9+ .2+ .4- .1- -> ranks + - + -? sorted: .9(+) .4(-) .2(+) .1(-) -> .5 + .5*2/3
    expect(s.perClassAP[0]).toBeCloseTo(0.5 + 1 / 3, 12);
    // class 1: .1- .8+ .7+ .9- -> sorted .9(-) .8(+) .7(+) .1(-) -> .5*.5 + .5*2/3
    expect(s.perClassAP[1]).toBeCloseTo(0.25 + 1 / 3, 12);
    expect(s.perClassAP[2]).toBeNaN();
    expect(s.absentClasses).toBe(1);
    const [a, b] = [0.5 + 1 / 3, 0.25 + 1 / 3];
    expect(s.mAP).toBeCloseTo((a + b) / 2, 12);
    expect(s.geometricMean).toBeCloseTo(Math.sqrt(a * b), 12);
    expect(s.harmonicMean).toBeCloseTo(2 / (1 / a + 1 / b), 12);
    expect(s.lowestAP).toBeCloseTo(b, 12);
    expect(s.lowestClass).toBe(1);
    expect(s.many).toEqual({ mAP: a, numClasses: 1 });
    expect(s.medium!.mAP).toBeCloseTo(b, 12);
    expect(s.few!.numClasses).toBe(1);
    expect(s.few!.mAP).toBeNaN();
  });
  it('refuses bad input by name', () => {
    expect(() => summarizeMultiLabel([1, 2], [0, 0], 2)).toThrow(/targets\[1\] = 2 must be 0 or 1/);
    expect(() => summarizeMultiLabel([1, 0, 1], [0, 0, 0], 2)).toThrow(/not a multiple of numClasses = 2/);
    expect(() => summarizeMultiLabel([1, 0], [0], 2)).toThrow(/differ in length/);
  });
});
