/** Small generated image tasks for native tests (the generators live in src/data/synthetic.ts). */
import type { DatasetSource } from '../../src/dataset.js';
import { gridTask, noiseTask, type SyntheticOptions } from '../../src/data/synthetic.js';

export const quadrantTask = (o: SyntheticOptions) => gridTask(o);

export const randomTask = (o: SyntheticOptions & { numClasses: number; size: number; channels: number }) => noiseTask(o);

/** n images of c x h x w with a deterministic pixel pattern ((i * 37) % 251) and labels i % numClasses. */
export function patternSource(n: number, c: number, h: number, w: number, numClasses = 3): DatasetSource {
  const images = new Uint8Array(n * c * h * w);
  for (let i = 0; i < images.length; i++) images[i] = (i * 37) % 251;
  const labels = Int32Array.from({ length: n }, (_, i) => i % numClasses);
  return { images, labels, n, channels: c, height: h, width: w };
}

export function range(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** The bytes of a typed array's own elements (not its whole underlying buffer). */
export function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
