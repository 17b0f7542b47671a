import { describe, expect, it } from 'vitest';
import { MAX_SEED, Rng } from '../../src/sampling/rng.js';

const draw = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.nextUint32());

/** Pearson chi-square statistic of observed counts against equal expected counts. */
function chiSquare(counts: ArrayLike<number>): number {
  const total = Array.from(counts).reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return Array.from(counts).reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
}

describe('Rng', () => {
  it('implements xoshiro128** (reference C outputs for state 1,2,3,4)', () => {
    const rng = new Rng(0);
    rng.setState([1, 2, 3, 4]);
    expect(draw(rng, 6)).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('seeds the state from splitmix64(seed) (reference outputs for seed 0)', () => {
    // splitmix64 from 0: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4
    expect(new Rng(0).getState()).toEqual([0x7b1dcdaf, 0xe220a839, 0xa1b965f4, 0x6e789e6a]);
  });

  it('is reproducible, differs across seeds, and resumes from a saved state', () => {
    expect(draw(new Rng(42), 20)).toEqual(draw(new Rng(42), 20));
    expect(draw(new Rng(42), 20)).not.toEqual(draw(new Rng(43), 20));
    const a = new Rng(7);
    draw(a, 5);
    const b = new Rng(0);
    b.setState(a.getState());
    expect(draw(b, 10)).toEqual(draw(a, 10));
  });

  it('accepts seeds in [0, 2^53] and rejects others with a RangeError naming seed', () => {
    expect(() => new Rng(MAX_SEED)).not.toThrow();
    expect(new Rng(MAX_SEED).nextUint32()).not.toBe(new Rng(MAX_SEED - 1).nextUint32());
    for (const bad of [-1, 1.5, NaN, Infinity, MAX_SEED + 2]) {
      expect(() => new Rng(bad)).toThrow(RangeError);
      expect(() => new Rng(bad)).toThrow(/seed/);
    }
    expect(() => new Rng(1).fork(-1)).toThrow(/stream/);
  });

  it('forks streams that depend only on (seed, path), not on the parent position', () => {
    const parent = new Rng(5);
    const before = draw(parent.fork(3), 10);
    draw(parent, 100);
    expect(draw(parent.fork(3), 10)).toEqual(before);
    expect(draw(new Rng(5, [3]), 10)).toEqual(before);
    expect(draw(parent.fork(4), 10)).not.toEqual(before);
    expect(draw(new Rng(6).fork(3), 10)).not.toEqual(before);
    expect(draw(parent, 10)).not.toEqual(draw(new Rng(5).fork(0), 10));
    expect(draw(parent.fork(1).fork(2), 10)).not.toEqual(draw(parent.fork(2).fork(1), 10));
    expect(parent.fork(1).fork(2).path).toEqual([1, 2]);
  });

  it('nextFloat lies in [0, 1) with mean about 1/2', () => {
    const rng = new Rng(1);
    const xs = Array.from({ length: 100_000 }, () => rng.nextFloat());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(Math.abs(xs.reduce((a, b) => a + b, 0) / xs.length - 0.5)).toBeLessThan(0.01);
  });

  it('int(n) stays in [0, n) and is roughly uniform (chi-square)', () => {
    const rng = new Rng(2);
    for (const n of [1, 2, 3, 10, 1000, 2 ** 32]) {
      const xs = Array.from({ length: 1000 }, () => rng.int(n));
      expect(xs.every((x) => Number.isInteger(x) && x >= 0 && x < n)).toBe(true);
    }
    const counts = new Array(10).fill(0);
    for (let k = 0; k < 100_000; k++) counts[rng.int(10)]++;
    // 9 degrees of freedom: P(chi2 > 40) < 1e-5.
    expect(chiSquare(counts)).toBeLessThan(40);
    expect(() => rng.int(0)).toThrow(/\bn\b/);
    expect(() => rng.int(2.5)).toThrow(RangeError);
  });

  it('int(n) has no modulo bias for n close to 2^32', () => {
    // With plain `r % n` for n = 3 * 2^30, values below 2^30 would come up half the time, not a third.
    const rng = new Rng(3);
    const n = 3 * 2 ** 30;
    let low = 0;
    for (let k = 0; k < 30_000; k++) if (rng.int(n) < 2 ** 30) low++;
    expect(Math.abs(low / 30_000 - 1 / 3)).toBeLessThan(0.02);
  });

  it('permutation(n) is a permutation and covers positions uniformly', () => {
    const rng = new Rng(4);
    const p = rng.permutation(1000);
    expect(p).toBeInstanceOf(Int32Array);
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(rng.permutation(0)).toHaveLength(0);
    // Where element 0 lands over many 5-permutations.
    const where = new Array(5).fill(0);
    for (let k = 0; k < 50_000; k++) where[rng.permutation(5).indexOf(0)]++;
    expect(chiSquare(where)).toBeLessThan(30); // 4 dof
  });

  it('shuffle works in place on arrays; a partial shuffle is a prefix of the full one', () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f'];
    const out = new Rng(9).shuffle(items);
    expect(out).toBe(items);
    expect([...items].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    const full = new Rng(10).shuffle(Int32Array.from({ length: 50 }, (_, i) => i));
    const part = new Rng(10).shuffle(Int32Array.from({ length: 50 }, (_, i) => i), 7);
    expect(Array.from(part.subarray(0, 7))).toEqual(Array.from(full.subarray(0, 7)));
    expect(() => new Rng(1).shuffle([1, 2], 3)).toThrow(/count/);
  });
});
