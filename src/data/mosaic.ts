/**
 * A generated multi-label long-tailed set: 2x2 mosaics of single-label images (Fashion-MNIST in the
 * main job, any one-channel set in tests). Each of the 4 cells is empty (black) with probability
 * `emptyProb`, else holds an image of a class drawn with probability q_c proportional to
 * (1/IF)^(c/(C-1)) (the 'exp' profile of the single-label split; a balanced set draws uniformly) and an
 * item of that class drawn uniformly from the source. An image's labels are the distinct classes of
 * its cells; an all-empty draw is redrawn, so every label set is non-empty. Seeded: the same source,
 * options and seed give the same bytes.
 */
import { Rng } from '../sampling/rng.js';
import type { ImageSet } from './image-set.js';

export interface MosaicOptions {
  n: number;
  /** q_head / q_tail of the per-cell class draw; 1 = balanced (the test set). */
  imbalanceFactor: number;
  /** Probability that a cell is empty (default 0.25). */
  emptyProb?: number;
  seed: number;
}

export interface MosaicSet {
  /** n * 1 * (2h) * (2w) pixels, NCHW. */
  images: Uint8Array;
  n: number;
  channels: 1;
  height: number;
  width: number;
  numClasses: number;
  /** The distinct classes of each image's cells, ascending. */
  labels: number[][];
  /** The class in each cell (row-major: top-left, top-right, bottom-left, bottom-right), -1 = empty. */
  cells: Int32Array;
  /** Source index of each cell's item, -1 = empty. */
  items: Int32Array;
  source: string;
}

/** Per-cell class probabilities q_c (sum 1) for `numClasses` classes and imbalance factor `imbalance`. */
export function mosaicClassProbs(numClasses: number, imbalance: number): number[] {
  const w = Array.from({ length: numClasses }, (_, c) => (numClasses === 1 ? 1 : (1 / imbalance) ** (c / (numClasses - 1))));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
}

export function makeMosaicSet(src: ImageSet, opts: MosaicOptions): MosaicSet {
  const { n, imbalanceFactor, emptyProb = 0.25, seed } = opts;
  if (src.channels !== 1) throw new RangeError(`${src.source}: mosaics take one-channel images, got ${src.channels} channels`);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`mosaic n must be an integer >= 0, got ${n}`);
  if (!(imbalanceFactor >= 1)) throw new RangeError(`mosaic imbalanceFactor must be >= 1, got ${imbalanceFactor}`);
  if (!(emptyProb >= 0 && emptyProb < 1)) throw new RangeError(`mosaic emptyProb must be in [0, 1), got ${emptyProb}`);
  const C = src.numClasses, h = src.height, w = src.width;
  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < src.n; i++) byClass[src.labels[i]].push(i);
  const missing = byClass.findIndex((l) => l.length === 0);
  if (missing >= 0) throw new RangeError(`${src.source}: class ${missing} has no image to draw mosaics from`);
  const q = mosaicClassProbs(C, imbalanceFactor);
  const cdf = q.map((_, c) => q.slice(0, c + 1).reduce((a, b) => a + b, 0));
  const rng = new Rng(seed);
  const H = 2 * h, W = 2 * w;
  const images = new Uint8Array(n * H * W);
  const cells = new Int32Array(n * 4).fill(-1), items = new Int32Array(n * 4).fill(-1);
  const labels: number[][] = [];
  for (let i = 0; i < n; i++) {
    let set: number[] = [];
    while (set.length === 0) {
      for (let k = 0; k < 4; k++) {
        cells[i * 4 + k] = -1;
        items[i * 4 + k] = -1;
        if (rng.nextFloat() < emptyProb) continue;
        const u = rng.nextFloat();
        let c = cdf.findIndex((v) => u < v);
        if (c < 0) c = C - 1;
        cells[i * 4 + k] = c;
        items[i * 4 + k] = byClass[c][rng.int(byClass[c].length)];
      }
      set = [...new Set(Array.from(cells.subarray(i * 4, i * 4 + 4)).filter((c) => c >= 0))].sort((a, b) => a - b);
    }
    labels.push(set);
    for (let k = 0; k < 4; k++) {
      const item = items[i * 4 + k];
      if (item < 0) continue;
      const oy = (k >> 1) * h, ox = (k & 1) * w;
      for (let y = 0; y < h; y++) {
        const from = item * h * w + y * w;
        images.set(src.images.subarray(from, from + w), i * H * W + (oy + y) * W + ox);
      }
    }
  }
  return { images, n, channels: 1, height: H, width: W, numClasses: C, labels, cells, items, source: `mosaic(${src.source}, IF ${imbalanceFactor}, seed ${seed})` };
}
