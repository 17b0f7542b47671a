/** Generated image tasks: seeded, learnable, no files (tests, quick checks, CI's end-to-end run). */
import { arg, is } from '../args.js';
import { Rng } from '../sampling/rng.js';
import { validateImageSet, type ImageSet } from './image-set.js';

export interface SyntheticOptions {
  n: number;
  numClasses?: number;
  size?: number;
  channels?: number;
  seed?: number;
}

const SYNTHETIC_OPTIONS = is.object({
  n: is.integer({ min: 0 }),
  numClasses: is.optional(is.integer({ min: 1 })),
  size: is.optional(is.integer({ min: 1 })),
  channels: is.optional(is.integer({ min: 1 })),
  seed: is.optional(is.integer()),
});

/**
 * Class k is a bright square in cell k of a ceil(sqrt(C)) grid on a noisy dark background; the
 * labels cycle 0..C-1. Learnable to ~100% by a small convnet. uint8, NCHW.
 */
export function gridTask(options: SyntheticOptions): ImageSet {
  const { n, numClasses = 4, size = 16, channels = 1, seed = 0 } = arg('gridTask', 'options', options, SYNTHETIC_OPTIONS);
  const rng = new Rng(seed);
  const grid = Math.ceil(Math.sqrt(numClasses));
  const cell = Math.floor(size / grid);
  if (cell < 1) throw new RangeError(`gridTask: size ${size} is too small for ${numClasses} classes`);
  const images = new Uint8Array(n * channels * size * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % numClasses;
    labels[i] = k;
    const gy = Math.floor(k / grid) * cell, gx = (k % grid) * cell;
    for (let c = 0; c < channels; c++) {
      const base = (i * channels + c) * size * size;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const inside = y >= gy && y < gy + cell && x >= gx && x < gx + cell;
          images[base + y * size + x] = (inside ? 160 : 20) + rng.int(80);
        }
      }
    }
  }
  return validateImageSet({ images, labels, n, channels, height: size, width: size, numClasses, source: `synthetic(seed ${seed})` });
}

/** Uniform random pixels and labels (not learnable; for shape and speed checks). */
export function noiseTask(options: SyntheticOptions): ImageSet {
  const { n, numClasses = 4, size = 16, channels = 1, seed = 0 } = arg('noiseTask', 'options', options, SYNTHETIC_OPTIONS);
  const rng = new Rng(seed);
  const images = new Uint8Array(n * channels * size * size);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(numClasses);
  return validateImageSet({ images, labels, n, channels, height: size, width: size, numClasses, source: `noise(seed ${seed})` });
}
