/**
 * Index samplers for training: plain epochs, MiSLAS's class-aware sampler, and BTM's balanced
 * few-shot subsets. All are driven by an explicit `Rng` and return Int32Arrays of dataset indices.
 */
import { assertInteger, type Rng } from './rng.js';

/**
 * Splits `indices` by label: result[c] holds the indices whose label is c, in their order in
 * `indices`. Throws a RangeError for an index outside `labels` or a label outside [0, numClasses).
 */
export function groupByClass(indices: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): Int32Array[] {
  assertInteger('numClasses', numClasses, 1);
  const sizes = new Int32Array(numClasses);
  const classOf = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= labels.length) {
      throw new RangeError(`index ${i} (position ${k}) is outside the dataset [0, ${labels.length})`);
    }
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new RangeError(`label ${c} of sample ${i} is outside [0, ${numClasses})`);
    }
    classOf[k] = c;
    sizes[c]++;
  }
  const groups = Array.from(sizes, (n) => new Int32Array(n));
  const fill = new Int32Array(numClasses);
  for (let k = 0; k < indices.length; k++) groups[classOf[k]][fill[classOf[k]]++] = indices[k];
  return groups;
}

/** One epoch of plain uniform sampling: a shuffled copy of `indices`. */
export function uniformEpoch(indices: ArrayLike<number>, rng: Rng): Int32Array {
  return rng.shuffle(Int32Array.from(indices));
}

/** Endless walk over a list in shuffled order, reshuffled at every wrap (MiSLAS's RandomCycleIter). */
class ShuffledCycle {
  private readonly items: Int32Array;
  private pos: number;

  constructor(items: ArrayLike<number>, private readonly rng: Rng) {
    this.items = Int32Array.from(items);
    this.pos = this.items.length; // forces a shuffle on the first draw
  }

  next(): number {
    if (this.pos === this.items.length) {
      this.rng.shuffle(this.items);
      this.pos = 0;
    }
    return this.items[this.pos++];
  }
}

/**
 * MiSLAS's ClassAwareSampler for one epoch of `numSamples` indices: walk a shuffled cycle of the
 * non-empty classes; for each class visited, emit `perClass` consecutive items of that class's own
 * shuffled cycle (a class smaller than `perClass` repeats within the draw). The final draw is cut
 * off at `numSamples`. MiSLAS uses numSamples = max class size * number of classes. Unlike MiSLAS,
 * whose iterators persist across epochs, every call starts from fresh shuffles.
 */
export function classAwareEpoch(
  indicesByClass: readonly ArrayLike<number>[],
  numSamples: number,
  rng: Rng,
  { perClass = 4 }: { perClass?: number } = {},
): Int32Array {
  assertInteger('numSamples', numSamples, 0);
  assertInteger('perClass', perClass, 1);
  const nonEmpty = indicesByClass.flatMap((list, c) => (list.length > 0 ? [c] : []));
  if (numSamples > 0 && nonEmpty.length === 0) throw new RangeError('classAwareEpoch: every class is empty');
  const classCycle = new ShuffledCycle(nonEmpty, rng);
  const itemCycles = indicesByClass.map((list) => new ShuffledCycle(list, rng));
  const out = new Int32Array(numSamples);
  for (let k = 0; k < numSamples; ) {
    const cycle = itemCycles[classCycle.next()];
    for (let j = 0; j < perClass && k < numSamples; j++) out[k++] = cycle.next();
  }
  return out;
}

export interface BtmSubsetOptions {
  /** N_D: number of balanced subsets (one fine-tuned model each). Default 10. */
  numSubsets?: number;
  /** N_C: images per class in each subset. Default 10. */
  perClass?: number;
}

/**
 * BTM's balanced few-shot subsets: each of N_D subsets takes N_C images of every class, drawn
 * without replacement inside the subset (independently across subsets, so subsets overlap, as in
 * the reference code). A class with fewer than N_C images contributes all it has and is listed in
 * `shortClasses`. Subset k is drawn from `rng.fork(k)`, so it does not depend on N_D.
 * Each subset is class-major: class 0's picks first, in draw order.
 */
export function btmSubsets(
  indicesByClass: readonly ArrayLike<number>[],
  { numSubsets = 10, perClass = 10 }: BtmSubsetOptions,
  rng: Rng,
): { subsets: Int32Array[]; shortClasses: number[] } {
  assertInteger('numSubsets', numSubsets, 1);
  assertInteger('perClass', perClass, 1);
  const takes = indicesByClass.map((list) => Math.min(perClass, list.length));
  const subsets = Array.from({ length: numSubsets }, (_, k) => {
    const stream = rng.fork(k);
    const subset = new Int32Array(takes.reduce((a, b) => a + b, 0));
    let offset = 0;
    indicesByClass.forEach((list, c) => {
      subset.set(sampleWithoutReplacement(list, takes[c], stream), offset);
      offset += takes[c];
    });
    return subset;
  });
  const shortClasses = takes.flatMap((n, c) => (n < perClass ? [c] : []));
  return { subsets, shortClasses };
}

/**
 * `count` distinct items of `pool` drawn uniformly (a partial Fisher–Yates on a copy). For a given
 * stream state the result for a smaller count is a prefix of the result for a larger one.
 */
export function sampleWithoutReplacement(pool: ArrayLike<number>, count: number, rng: Rng): Int32Array {
  return rng.shuffle(Int32Array.from(pool), count).slice(0, count);
}
