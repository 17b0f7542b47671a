/** Small generated image tasks for native tests (the generators live in src/data/synthetic.ts). */
import { gridTask, noiseTask, type SyntheticOptions } from '../../src/data/synthetic.js';

export const quadrantTask = (o: SyntheticOptions) => gridTask(o);

export const randomTask = (o: SyntheticOptions & { numClasses: number; size: number; channels: number }) => noiseTask(o);

export function range(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** The bytes of a typed array's own elements (not its whole underlying buffer). */
export function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
