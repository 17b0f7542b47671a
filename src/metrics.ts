/**
 * Long-tailed classification metrics: confusion matrix, per-class recall, its arithmetic /
 * geometric / harmonic means (the BTM paper's headline numbers), the worst class, and the
 * many / medium / few split by training-set class size.
 *
 * Conventions:
 * - A confusion matrix is an array of `numClasses` rows, `cm[trueClass][predictedClass]`.
 * - A class with no samples in the evaluated set has recall NaN; summaries exclude it from every
 *   mean and from the lowest recall, and report how many classes were excluded (`absentClasses`).
 * - Zero floor (BTM eval.py): before the geometric and harmonic means, a recall of exactly 0 is
 *   replaced by `zeroFloor` (default 1e-3, a fraction, not a percentage). Positive recalls below the
 *   floor are kept as they are, as in eval.py. The arithmetic mean and the lowest recall use the
 *   true values.
 */

export type Group = 'many' | 'medium' | 'few';

export const DEFAULT_MANY_THRESHOLD = 100;
export const DEFAULT_FEW_THRESHOLD = 20;
export const DEFAULT_ZERO_FLOOR = 1e-3;

function checkNumClasses(numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  }
}

/** Throws unless every entry of `values` (named `name` in the message) is an integer in [0, numClasses). */
function checkClassIndices(name: string, values: ArrayLike<number>, numClasses: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v)) throw new TypeError(`${name}[${i}] = ${v} is not an integer`);
    if (v < 0 || v >= numClasses) {
      throw new RangeError(`${name}[${i}] = ${v} is out of range [0, ${numClasses})`);
    }
  }
}

/**
 * Confusion matrix `cm[trueClass][predictedClass]` (counts). Throws a RangeError on a length
 * mismatch or an index outside [0, numClasses), a TypeError on a non-integer label or prediction.
 */
export function confusionMatrix(
  labels: ArrayLike<number>,
  preds: ArrayLike<number>,
  numClasses: number,
): Int32Array[] {
  checkNumClasses(numClasses);
  if (labels.length !== preds.length) {
    throw new RangeError(
      `labels and preds must have the same length, got labels.length = ${labels.length}, preds.length = ${preds.length}`,
    );
  }
  checkClassIndices('labels', labels, numClasses);
  checkClassIndices('preds', preds, numClasses);
  const cm = Array.from({ length: numClasses }, () => new Int32Array(numClasses));
  for (let i = 0; i < labels.length; i++) cm[labels[i]][preds[i]]++;
  return cm;
}

/** Per-class recall from a confusion matrix: diagonal / row sum; NaN for a class with no samples. */
export function recallFromConfusion(cm: readonly Int32Array[]): number[] {
  return cm.map((row, c) => {
    const support = row.reduce((a, b) => a + b, 0);
    return support === 0 ? NaN : row[c] / support;
  });
}

/** Per-class recall (correct / support); NaN for a class absent from `labels`. */
export function perClassRecall(
  labels: ArrayLike<number>,
  preds: ArrayLike<number>,
  numClasses: number,
): number[] {
  return recallFromConfusion(confusionMatrix(labels, preds, numClasses));
}

/**
 * Generalized (power) mean M_p = (mean x^p)^(1/p) of non-negative values: p = 1 arithmetic,
 * p = 0 geometric (computed through logs), p = -1 harmonic, p = ±Infinity max / min.
 * For p <= 0 a value of exactly 0 is first replaced by `zeroFloor` (pass 0 to disable; the mean is
 * then 0); for p > 0 values are used as they are. Returns NaN for an empty input; throws a
 * RangeError on a negative or non-finite value.
 */
export function generalizedMean(
  values: ArrayLike<number>,
  p: number,
  zeroFloor = DEFAULT_ZERO_FLOOR,
): number {
  if (Number.isNaN(p)) throw new RangeError('p must be a number, got NaN');
  if (!(zeroFloor >= 0)) throw new RangeError(`zeroFloor must be >= 0, got ${zeroFloor}`);
  const xs = Array.from(values, (x, i) => {
    if (!Number.isFinite(x) || x < 0) {
      throw new RangeError(`values[${i}] = ${x} must be a finite non-negative number`);
    }
    return p <= 0 && x === 0 ? zeroFloor : x;
  });
  const n = xs.length;
  if (n === 0) return NaN;
  const max = xs.reduce((a, b) => Math.max(a, b));
  const min = xs.reduce((a, b) => Math.min(a, b));
  if (p === Infinity) return max;
  if (p === -Infinity) return min;
  if (p === 0) return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / n);
  // Scale by the extreme value that dominates (max for p > 0, min for p < 0) so that every
  // (x / m)^p lies in [0, 1]: no overflow for large |p|.
  const m = p > 0 ? max : min;
  if (m === 0) return 0;
  const meanPow = xs.reduce((s, x) => s + (x / m) ** p, 0) / n;
  return m * meanPow ** (1 / p);
}

/**
 * Group of a class by its number of training images: 'many' if count > manyThreshold, 'few' if
 * count < fewThreshold, otherwise 'medium' (20..100 inclusive with the defaults).
 */
export function groupOf(
  count: number,
  manyThreshold = DEFAULT_MANY_THRESHOLD,
  fewThreshold = DEFAULT_FEW_THRESHOLD,
): Group {
  if (count > manyThreshold) return 'many';
  if (count < fewThreshold) return 'few';
  return 'medium';
}

/** The group of every class, from its training-set count (see {@link groupOf}). */
export function classGroups(
  trainCounts: ArrayLike<number>,
  manyThreshold = DEFAULT_MANY_THRESHOLD,
  fewThreshold = DEFAULT_FEW_THRESHOLD,
): Group[] {
  if (fewThreshold > manyThreshold) {
    throw new RangeError(
      `fewThreshold (${fewThreshold}) must not exceed manyThreshold (${manyThreshold})`,
    );
  }
  return Array.from(trainCounts, (count, i) => {
    if (!Number.isFinite(count) || count < 0) {
      throw new RangeError(`trainCounts[${i}] = ${count} must be a finite non-negative number`);
    }
    return groupOf(count, manyThreshold, fewThreshold);
  });
}

export interface SummarizeOptions {
  /** Training images per class; enables the many / medium / few split. */
  trainCounts?: ArrayLike<number>;
  /** A class with more than this many training images is 'many' (default 100). */
  manyThreshold?: number;
  /** A class with fewer than this many training images is 'few' (default 20). */
  fewThreshold?: number;
  /** Stand-in for a zero recall in the geometric and harmonic means (default 1e-3). */
  zeroFloor?: number;
}

/** One many / medium / few group. */
export interface GroupSummary {
  /** Mean per-class recall over the group's classes present in the evaluated set (NaN if none is). */
  recall: number;
  /** Number of classes in the group (by training counts, present in the evaluated set or not). */
  numClasses: number;
}

export interface Summary {
  numSamples: number;
  /** Overall sample accuracy (correct / samples); NaN for an empty evaluated set. */
  accuracy: number;
  /** Recall per class; NaN for a class absent from the evaluated set. */
  perClassRecall: number[];
  /** Number of classes absent from the evaluated set (excluded from the means below). */
  absentClasses: number;
  /** Arithmetic mean of per-class recall (true values). */
  arithmeticMean: number;
  /** Geometric mean of per-class recall, zero recalls counted as zeroFloor. */
  geometricMean: number;
  /** Harmonic mean of per-class recall, zero recalls counted as zeroFloor. */
  harmonicMean: number;
  /** True minimum recall (0 stays 0); NaN when no class is present. */
  lowestRecall: number;
  /** Class with the lowest recall (first on ties); -1 when no class is present. */
  lowestClass: number;
  /** Number of classes with recall exactly 0. */
  zeroRecallClasses: number;
  /** Many / medium / few split, only when trainCounts is given; null for an empty group. */
  many?: GroupSummary | null;
  medium?: GroupSummary | null;
  few?: GroupSummary | null;
}

/** All the metrics of one evaluation (see {@link Summary}). */
export function summarize(
  labels: ArrayLike<number>,
  preds: ArrayLike<number>,
  numClasses: number,
  opts: SummarizeOptions = {},
): Summary {
  const {
    trainCounts,
    manyThreshold = DEFAULT_MANY_THRESHOLD,
    fewThreshold = DEFAULT_FEW_THRESHOLD,
    zeroFloor = DEFAULT_ZERO_FLOOR,
  } = opts;
  const cm = confusionMatrix(labels, preds, numClasses);
  const recall = recallFromConfusion(cm);
  const present = recall.filter((r) => !Number.isNaN(r));

  let correct = 0;
  for (let c = 0; c < numClasses; c++) correct += cm[c][c];

  let lowestClass = -1;
  recall.forEach((r, c) => {
    if (!Number.isNaN(r) && (lowestClass < 0 || r < recall[lowestClass])) lowestClass = c;
  });

  const summary: Summary = {
    numSamples: labels.length,
    accuracy: labels.length === 0 ? NaN : correct / labels.length,
    perClassRecall: recall,
    absentClasses: numClasses - present.length,
    arithmeticMean: generalizedMean(present, 1),
    geometricMean: generalizedMean(present, 0, zeroFloor),
    harmonicMean: generalizedMean(present, -1, zeroFloor),
    lowestRecall: lowestClass < 0 ? NaN : recall[lowestClass],
    lowestClass,
    zeroRecallClasses: present.filter((r) => r === 0).length,
  };

  if (trainCounts !== undefined) {
    if (trainCounts.length !== numClasses) {
      throw new RangeError(
        `trainCounts.length = ${trainCounts.length} must equal numClasses = ${numClasses}`,
      );
    }
    const groups = classGroups(trainCounts, manyThreshold, fewThreshold);
    const split = (group: Group): GroupSummary | null => {
      const members = recall.filter((_, c) => groups[c] === group);
      if (members.length === 0) return null;
      return {
        recall: generalizedMean(members.filter((r) => !Number.isNaN(r)), 1),
        numClasses: members.length,
      };
    };
    summary.many = split('many');
    summary.medium = split('medium');
    summary.few = split('few');
  }
  return summary;
}
