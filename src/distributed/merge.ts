/**
 * BTM fanned out over ranks: rank r holds the members it fine-tuned; the merged model is one
 * all-reduce of the members' weighted states, divided by the total weight: the same weighted mean as
 * mergeFiles over all member checkpoints (up to float32 summation order: each rank's partial mean is
 * float64 until it travels as float32).
 */
import { StateAccumulator } from '../merge.js';
import type { StateDict } from '../state-dict.js';
import type { ProcessGroup } from './process-group.js';

/**
 * Collective: the weighted mean of every rank's `local` states. `layout` gives names, shapes and
 * dtypes (a rank with no member sends zeros); `totalWeight` is the sum of the weights over all ranks.
 */
export async function allreduceMerge(group: ProcessGroup, local: { state: StateDict; weight: number }[], layout: StateDict, totalWeight: number): Promise<StateDict> {
  let parts: Float32Array[];
  if (local.length === 0) {
    parts = layout.map((e) => new Float32Array(e.data.length));
  } else {
    const acc = new StateAccumulator();
    for (const [i, m] of local.entries()) acc.add(m.state, m.weight, `member ${i} of rank ${group.rank}`);
    const mean = acc.result();
    const names = layout.map((e) => e.name).join('\n');
    if (mean.map((e) => e.name).join('\n') !== names) throw new Error(`allreduceMerge: rank ${group.rank}'s members do not have the model's layout`);
    // this rank's share of the global mean: local mean * local weight / total weight
    const share = acc.totalWeight / totalWeight;
    parts = mean.map((e) => {
      const f = new Float32Array(e.data.length);
      for (let i = 0; i < f.length; i++) f[i] = Number(e.data[i]) * share;
      return f;
    });
  }
  const sums = await group.allreduce(parts);
  return layout.map((e, i) => ({
    name: e.name,
    shape: [...e.shape],
    dtype: e.dtype,
    data: e.dtype === 'float32' ? sums[i] : BigInt64Array.from(sums[i], (v) => BigInt(Math.round(v))),
  })) as StateDict;
}
