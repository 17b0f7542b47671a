// The generated multi-label long-tailed mosaic set: reproducible, cells copied from the source,
// non-empty label sets, long-tailed class frequencies in training and balanced ones in test.
import { describe, expect, it } from 'vitest';
import { gridTask } from '../../src/data/synthetic.js';
import { makeMosaicSet, mosaicClassProbs } from '../../src/data/mosaic.js';
import { multiLabelCounts } from '../../src/data/multilabel-list.js';
import type { ImageSet } from '../../src/data/image-set.js';
import { existsSync } from 'node:fs';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/idx.js';

const src: ImageSet = { ...gridTask({ n: 200, numClasses: 10, size: 8, channels: 1, seed: 1 }) };

describe('mosaic set', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = makeMosaicSet(src, { n: 50, imbalanceFactor: 10, seed: 7 });
    const b = makeMosaicSet(src, { n: 50, imbalanceFactor: 10, seed: 7 });
    const c = makeMosaicSet(src, { n: 50, imbalanceFactor: 10, seed: 8 });
    expect(Buffer.from(a.images).equals(Buffer.from(b.images))).toBe(true);
    expect(a.labels).toEqual(b.labels);
    expect(Buffer.from(a.images).equals(Buffer.from(c.images))).toBe(false);
    expect([a.height, a.width, a.channels]).toEqual([16, 16, 1]);
  });

  it('each cell holds its source item (or zeros), labels are the cells classes, never empty', () => {
    const m = makeMosaicSet(src, { n: 100, imbalanceFactor: 10, emptyProb: 0.5, seed: 3 });
    for (let i = 0; i < m.n; i++) {
      expect(m.labels[i].length).toBeGreaterThan(0);
      const cells = Array.from(m.cells.subarray(i * 4, i * 4 + 4));
      expect(m.labels[i]).toEqual([...new Set(cells.filter((c) => c >= 0))].sort((x, y) => x - y));
      for (let k = 0; k < 4; k++) {
        const item = m.items[i * 4 + k];
        if (item >= 0) expect(src.labels[item]).toBe(cells[k]);
        for (let y = 0; y < 8; y++) {
          for (let x = 0; x < 8; x++) {
            const got = m.images[i * 256 + ((k >> 1) * 8 + y) * 16 + (k & 1) * 8 + x];
            expect(got).toBe(item < 0 ? 0 : src.images[item * 64 + y * 8 + x]);
          }
        }
      }
    }
  });

  it('training classes are long-tailed (head/tail near IF), the test set balanced', () => {
    expect(mosaicClassProbs(10, 100)[0] / mosaicClassProbs(10, 100)[9]).toBeCloseTo(100, 9);
    const train = makeMosaicSet(src, { n: 20000, imbalanceFactor: 20, emptyProb: 0.25, seed: 11 });
    const cellCounts = new Array(10).fill(0);
    for (const c of train.cells) if (c >= 0) cellCounts[c]++;
    const ratio = cellCounts[0] / cellCounts[9];
    expect(ratio).toBeGreaterThan(16);
    expect(ratio).toBeLessThan(25);
    const counts = multiLabelCounts(train.labels, 10);
    for (let c = 1; c < 10; c++) expect(counts[c]).toBeLessThan(counts[c - 1] * 1.1);
    const test = multiLabelCounts(makeMosaicSet(src, { n: 5000, imbalanceFactor: 1, seed: 12 }).labels, 10);
    expect(Math.max(...test) / Math.min(...test)).toBeLessThan(1.15);
  });

  it('refuses bad options by name', () => {
    expect(() => makeMosaicSet(src, { n: 5, imbalanceFactor: 0.5, seed: 0 })).toThrow(/imbalanceFactor must be >= 1/);
    expect(() => makeMosaicSet(src, { n: 5, imbalanceFactor: 2, emptyProb: 1, seed: 0 })).toThrow(/emptyProb must be in \[0, 1\)/);
  });
});

describe.skipIf(!existsSync(FASHION_MNIST_DIR))('mosaic set from the real Fashion-MNIST', () => {
  it('56x56 mosaics of the test images, balanced, reproducible', () => {
    const fm = loadFashionMnist('test');
    const m = makeMosaicSet(fm, { n: 2000, imbalanceFactor: 1, seed: 0 });
    expect([m.height, m.width]).toEqual([56, 56]);
    const counts = multiLabelCounts(m.labels, 10);
    expect(Math.min(...counts)).toBeGreaterThan(0.8 * Math.max(...counts));
    expect(Buffer.from(makeMosaicSet(fm, { n: 20, imbalanceFactor: 1, seed: 0 }).images).equals(Buffer.from(m.images.subarray(0, 20 * 56 * 56)))).toBe(true);
  });
});
