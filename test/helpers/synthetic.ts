/** Small generated image tasks for native tests: seeded, learnable, no files. */
import { Rng } from '../../src/sampling/rng.js';
import type { DatasetSource } from '../../src/dataset.js';

/**
 * `numClasses` classes, class k = a bright square in cell k of a grid on a noisy dark background.
 * Learnable to ~100% by a small convnet; every pixel uint8, NCHW.
 */
export function quadrantTask(opts: { n: number; numClasses?: number; size?: number; channels?: number; seed?: number }): DatasetSource {
  const { n, numClasses = 4, size = 16, channels = 1, seed = 0 } = opts;
  const rng = new Rng(seed);
  const grid = Math.ceil(Math.sqrt(numClasses));
  const cell = Math.floor(size / grid);
  const images = new Uint8Array(n * channels * size * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % numClasses;
    labels[i] = k;
    const gy = Math.floor(k / grid) * cell, gx = (k % grid) * cell;
    for (let c = 0; c < channels; c++) {
      const base = ((i * channels + c) * size) * size;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const inside = y >= gy && y < gy + cell && x >= gx && x < gx + cell;
          images[base + y * size + x] = (inside ? 160 : 20) + rng.int(80);
        }
      }
    }
  }
  return { images, labels, n, channels, height: size, width: size };
}

/** Uniform random pixels and labels. */
export function randomTask(opts: { n: number; numClasses: number; size: number; channels: number; seed?: number }): DatasetSource {
  const { n, numClasses, size, channels, seed = 0 } = opts;
  const rng = new Rng(seed);
  const images = new Uint8Array(n * channels * size * size);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(numClasses);
  return { images, labels, n, channels, height: size, width: size };
}

export function range(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}
