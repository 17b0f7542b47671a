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
