import { expect } from 'vitest';
import type { StateDict } from '../../src/index.js';

/**
 * The worst entry of two state dicts with the same names: |a - b| / (1e-3 + |b|) for float entries,
 * |a - b| for integer ones (num_batches_tracked), and the tensor it was found in.
 */
export function maxRelDiff(a: StateDict, b: StateDict): { worst: number; name: string } {
  const bm = new Map(b.map((e) => [e.name, e]));
  let worst = 0, name = '';
  for (const e of a) {
    const x = e.data as ArrayLike<number | bigint>, y = bm.get(e.name)!.data as ArrayLike<number | bigint>;
    for (let i = 0; i < x.length; i++) {
      const d = typeof x[i] === 'bigint' ? Math.abs(Number((x[i] as bigint) - (y[i] as bigint))) : Math.abs((x[i] as number) - (y[i] as number)) / (1e-3 + Math.abs(y[i] as number));
      if (d > worst) (worst = d), (name = e.name);
    }
  }
  return { worst, name };
}

/**
 * The worst entry of two state dicts in the same order and with the same names, relative to the
 * largest magnitude of its tensor in b: |a - b| / max(1e-3, max |b|) (integers compared as numbers).
 */
export function maxScaledDiff(a: readonly { name: string; data: ArrayLike<number | bigint> }[], b: readonly { name: string; data: ArrayLike<number | bigint> }[]): { worst: number; name: string } {
  expect(a.map((e) => e.name)).toEqual(b.map((e) => e.name));
  let worst = 0, name = '';
  for (let i = 0; i < a.length; i++) {
    const x = a[i].data, y = b[i].data;
    let scale = 1e-3;
    for (let j = 0; j < y.length; j++) scale = Math.max(scale, Math.abs(Number(y[j])));
    for (let j = 0; j < x.length; j++) {
      const d = Math.abs(Number(x[j]) - Number(y[j])) / scale;
      if (d > worst) (worst = d), (name = a[i].name);
    }
  }
  return { worst, name };
}
