/**
 * Long-tailed training splits built from a balanced dataset (CIFAR-LT style), and the plain-text
 * list format that records a split so a run can be repeated exactly.
 */
import { assertInteger, Rng } from './rng.js';
import { groupByClass, sampleWithoutReplacement } from './samplers.js';

export type LongTailProfile = 'exp' | 'step';

export interface LongTailOptions {
  /** C, at least 2. */
  numClasses: number;
  /** n_max: images of the most frequent class (class 0), at least 1. */
  maxPerClass: number;
  /** IF = n_max / n_min, a number in [1, maxPerClass]. */
  imbalanceFactor: number;
  profile: LongTailProfile;
  /** Step profile only: fraction of classes (the last ones) that are minority, in (0, 1). Default 0.5. */
  stepMinorFraction?: number;
}

/**
 * Images per class, class 0 the most frequent.
 * - `exp`: n_i = floor(n_max * (1/IF)^(i/(C-1))), the formula of the CIFAR-LT code used by
 *   LDAM/MiSLAS/BTM (same floating-point expression), so n_0 = n_max and n_{C-1} = floor(n_max/IF)
 *   for the usual settings. CIFAR-10-LT IF 100: [5000, 2997, ..., 83, 50], 12,406 images in all.
 * - `step`: the last ceil(C * stepMinorFraction) classes are minority with floor(n_max/IF) images
 *   (same expression as exp's last class), the others have n_max. With the default 0.5 and odd C the
 *   extra class is a minority class; the fraction must leave at least one class in each group.
 * Every count is clamped to at least 1: IF <= n_max is required, so the clamp only absorbs
 * round-off such as 49 * (1/49) = 0.999... .
 */
export function longTailCounts(options: LongTailOptions): number[] {
  const { numClasses: C, maxPerClass, imbalanceFactor, profile, stepMinorFraction = 0.5 } = options;
  assertInteger('numClasses', C, 2);
  assertInteger('maxPerClass', maxPerClass, 1);
  if (!Number.isFinite(imbalanceFactor) || imbalanceFactor < 1 || imbalanceFactor > maxPerClass) {
    throw new RangeError(`imbalanceFactor must be a number in [1, maxPerClass = ${maxPerClass}], got ${imbalanceFactor}`);
  }
  const countAt = (t: number): number => Math.max(1, Math.floor(maxPerClass * Math.pow(1 / imbalanceFactor, t)));
  switch (profile) {
    case 'exp':
      return Array.from({ length: C }, (_, i) => countAt(i / (C - 1)));
    case 'step': {
      if (!(stepMinorFraction > 0 && stepMinorFraction < 1)) {
        throw new RangeError(`stepMinorFraction must be in (0, 1), got ${stepMinorFraction}`);
      }
      const numMinor = Math.ceil(C * stepMinorFraction - 1e-9); // tolerance: 10 * 0.3 = 3.0000000000000004
      if (numMinor >= C) {
        throw new RangeError(`stepMinorFraction ${stepMinorFraction} leaves no majority class among ${C}`);
      }
      return Array.from({ length: C }, (_, i) => (i < C - numMinor ? maxPerClass : countAt(1)));
    }
    default:
      throw new RangeError(`profile must be 'exp' or 'step', got ${String(profile)}`);
  }
}

const range = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

/** Images per class among `indices` (all of `labels` when omitted). */
export function classCounts(labels: ArrayLike<number>, indices: ArrayLike<number> | undefined, numClasses: number): number[] {
  return groupByClass(indices ?? range(labels.length), labels, numClasses).map((g) => g.length);
}

/**
 * Picks counts[c] images of every class c: the first counts[c] of a shuffle of the class's indices
 * drawn from `new Rng(seed).fork(c)`. Because that shuffle does not depend on the counts, the split
 * for a larger IF is contained in the split for a smaller IF with the same seed and n_max.
 * Throws a RangeError naming the class when it has fewer than counts[c] images.
 * `pool` (ascending dataset indices, default all): pick only among these (the images a validation
 * split left over); with every index it is the same as without.
 * Returns the chosen dataset indices sorted ascending, and the per-class counts.
 */
export function makeLongTailSplit(
  labels: ArrayLike<number>,
  numClasses: number,
  counts: readonly number[],
  seed: number,
  pool?: ArrayLike<number>,
): { indices: Int32Array; counts: number[] } {
  if (counts.length !== numClasses) {
    throw new RangeError(`counts has ${counts.length} entries, expected numClasses = ${numClasses}`);
  }
  const root = new Rng(seed);
  const parts = groupByClass(pool ?? range(labels.length), labels, numClasses).map((pool, c) => {
    assertInteger(`counts[${c}]`, counts[c], 0);
    if (pool.length < counts[c]) {
      throw new RangeError(`class ${c} has ${pool.length} images, fewer than the ${counts[c]} requested`);
    }
    return sampleWithoutReplacement(pool, counts[c], root.fork(c));
  });
  const indices = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    indices.set(p, offset);
    offset += p.length;
  }
  return { indices: indices.sort(), counts: [...counts] };
}

/** The fork of a seed's stream that draws validation images (class c: a further fork by c). */
const VALIDATION_STREAM = 0x7a1d;

/**
 * A balanced validation split: `perClass` images of every class drawn from `pool` (ascending dataset
 * indices, default all) with `new Rng(seed).fork(VALIDATION_STREAM).fork(c)`, a stream of its own (the
 * long-tailed split draws from `fork(c)`). Returns the held-out indices sorted ascending and the pool
 * with them removed (ascending), from which the training split is then drawn, so the two are disjoint.
 * Throws a RangeError naming the class when it has fewer than `perClass` images in the pool.
 */
export function makeValidationSplit(
  labels: ArrayLike<number>,
  numClasses: number,
  perClass: number,
  seed: number,
  pool?: ArrayLike<number>,
): { val: Int32Array; rest: Int32Array } {
  assertInteger('perClass', perClass, 0);
  const all = pool ?? range(labels.length);
  if (perClass === 0) return { val: new Int32Array(0), rest: Int32Array.from(all) };
  const root = new Rng(seed).fork(VALIDATION_STREAM);
  const held = new Uint8Array(labels.length);
  const parts = groupByClass(all, labels, numClasses).map((group, c) => {
    if (group.length < perClass) {
      throw new RangeError(`class ${c} has ${group.length} images, fewer than the ${perClass} requested`);
    }
    return sampleWithoutReplacement(group, perClass, root.fork(c));
  });
  for (const p of parts) for (const i of p) held[i] = 1;
  const val = Int32Array.from(parts.flatMap((p) => Array.from(p))).sort();
  const rest = Int32Array.from(Array.from(all).filter((i) => !held[i]));
  return { val, rest };
}

/** What the header line of a split list records, besides the dataset size and the sample count. */
export interface SplitListMeta {
  numClasses: number;
  seed: number;
  profile: LongTailProfile;
  imbalanceFactor: number;
}

/**
 * The split as text: a header comment
 *   `# btm-split dataset_size=<N> num_classes=<C> samples=<M> seed=<S> profile=<exp|step> imbalance_factor=<IF>`
 * then one line `<index> <label>` per sample, in the order of `indices`. `labels` are the labels
 * of the whole dataset (indexed by dataset index).
 */
export function formatSplitList(indices: ArrayLike<number>, labels: ArrayLike<number>, meta: SplitListMeta): string {
  classCounts(labels, indices, meta.numClasses); // validates every index and label
  const header =
    `# btm-split dataset_size=${labels.length} num_classes=${meta.numClasses} samples=${indices.length}` +
    ` seed=${meta.seed} profile=${meta.profile} imbalance_factor=${meta.imbalanceFactor}`;
  const lines = Array.from(indices, (i) => `${i} ${labels[i]}`);
  return [header, ...lines].join('\n') + '\n';
}

export interface ParseSplitListOptions {
  /** File name used in error messages. */
  source: string;
  /** When given, every label must be in [0, numClasses). */
  numClasses?: number;
  /** When given, every index must be in [0, datasetSize). */
  datasetSize?: number;
  /** When given, every line's label must equal datasetLabels[index] (implies datasetSize). */
  datasetLabels?: ArrayLike<number>;
}

/**
 * Reads a split list. Blank lines and lines starting with `#` are skipped; every other line must be
 * `<index> <label>` (non-negative decimal integers). Throws an Error `<source>:<line>: <problem>`
 * for a malformed line, an out-of-range index or label, a label that disagrees with the dataset,
 * or an index listed twice.
 */
export function parseSplitList(text: string, options: ParseSplitListOptions): { indices: Int32Array; labels: Int32Array } {
  const { source, numClasses, datasetLabels } = options;
  const datasetSize = options.datasetSize ?? datasetLabels?.length;
  const indices: number[] = [];
  const labels: number[] = [];
  const lineOfIndex = new Map<number, number>();
  for (const [k, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fail: (problem: string) => never = (problem) => {
      throw new Error(`${source}:${k + 1}: ${problem}`);
    };
    const match = /^(\d+)\s+(\d+)$/.exec(line);
    if (!match) fail(`expected "<index> <label>", got "${line}"`);
    const index = Number(match[1]);
    const label = Number(match[2]);
    const indexLimit = Math.min(datasetSize ?? Infinity, 0x80000000);
    if (index >= indexLimit) fail(`index ${index} is outside the dataset [0, ${indexLimit})`);
    const labelLimit = numClasses ?? 0x80000000;
    if (label >= labelLimit) fail(`label ${label} is outside [0, ${labelLimit})`);
    if (datasetLabels !== undefined && datasetLabels[index] !== label) {
      fail(`label ${label} of index ${index} does not match the dataset label ${datasetLabels[index]}`);
    }
    const previous = lineOfIndex.get(index);
    if (previous !== undefined) fail(`index ${index} is already listed on line ${previous}`);
    lineOfIndex.set(index, k + 1);
    indices.push(index);
    labels.push(label);
  }
  return { indices: Int32Array.from(indices), labels: Int32Array.from(labels) };
}
