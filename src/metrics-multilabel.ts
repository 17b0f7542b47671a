/**
 * Multi-label metrics: per-class average precision (AP), its mean (mAP), and the worst-class view of
 * the single-label metrics carried over to AP (geometric and harmonic means and the minimum of the
 * per-class APs), with the many / medium / few split by training counts.
 */
import { classGroups, DEFAULT_FEW_THRESHOLD, DEFAULT_MANY_THRESHOLD, DEFAULT_ZERO_FLOOR, generalizedMean, type Group } from './metrics.js';

/**
 * Average precision of one class: the scores of every sample, and whether each is a positive.
 * AP = sum over the distinct score thresholds, from the highest, of (R_n - R_{n-1}) P_n, with P_n and
 * R_n the precision and recall of "score >= threshold n" (tied scores enter together): the definition
 * of scikit-learn's average_precision_score. NaN when the class has no positive.
 */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<boolean | number>): number {
  const n = scores.length;
  if (positive.length !== n) throw new RangeError(`averagePrecision: ${n} scores but ${positive.length} labels`);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i++) if (!Number.isFinite(scores[i])) throw new RangeError(`averagePrecision: scores[${i}] = ${scores[i]} is not finite`);
  order.sort((a, b) => scores[b] - scores[a]);
  let totalPos = 0;
  for (let i = 0; i < n; i++) if (positive[i]) totalPos++;
  if (totalPos === 0) return NaN;
  let ap = 0, tp = 0, seen = 0, prevRecall = 0;
  for (let k = 0; k < n; ) {
    const s = scores[order[k]];
    while (k < n && scores[order[k]] === s) {
      if (positive[order[k]]) tp++;
      seen++;
      k++;
    }
    const recall = tp / totalPos;
    ap += (recall - prevRecall) * (tp / seen);
    prevRecall = recall;
  }
  return ap;
}

export interface MultiLabelGroup {
  /** Mean AP over the group's classes with a positive in the evaluated set (NaN if none has). */
  mAP: number;
  /** Classes in the group by training counts. */
  numClasses: number;
}

export interface MultiLabelSummary {
  numSamples: number;
  /** AP per class; NaN for a class without a positive in the evaluated set. */
  perClassAP: number[];
  absentClasses: number;
  /** Mean of the per-class APs (classes with a positive). */
  mAP: number;
  /** Geometric and harmonic means of the per-class APs (an AP of 0 counted as zeroFloor). */
  geometricMean: number;
  harmonicMean: number;
  /** The lowest per-class AP and its class (-1 when no class has a positive). */
  lowestAP: number;
  lowestClass: number;
  many?: MultiLabelGroup | null;
  medium?: MultiLabelGroup | null;
  few?: MultiLabelGroup | null;
}

export interface MultiLabelOptions {
  /** Training images containing each class; enables the many / medium / few split. */
  trainCounts?: ArrayLike<number>;
  manyThreshold?: number;
  fewThreshold?: number;
  zeroFloor?: number;
}

/**
 * The metrics of one multi-label evaluation: `targets` and `scores` are [numSamples * numClasses],
 * row-major (targets 0/1, scores any finite numbers such as logits).
 */
export function summarizeMultiLabel(targets: ArrayLike<number>, scores: ArrayLike<number>, numClasses: number, opts: MultiLabelOptions = {}): MultiLabelSummary {
  const { trainCounts, manyThreshold = DEFAULT_MANY_THRESHOLD, fewThreshold = DEFAULT_FEW_THRESHOLD, zeroFloor = DEFAULT_ZERO_FLOOR } = opts;
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`numClasses must be an integer >= 1, got ${numClasses}`);
  if (targets.length !== scores.length) throw new RangeError(`targets (${targets.length}) and scores (${scores.length}) differ in length`);
  if (targets.length % numClasses !== 0) throw new RangeError(`targets length ${targets.length} is not a multiple of numClasses = ${numClasses}`);
  const n = targets.length / numClasses;
  const perClassAP: number[] = [];
  for (let c = 0; c < numClasses; c++) {
    const s = new Float64Array(n), p = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const t = targets[i * numClasses + c];
      if (t !== 0 && t !== 1) throw new RangeError(`targets[${i * numClasses + c}] = ${t} must be 0 or 1`);
      s[i] = scores[i * numClasses + c];
      p[i] = t;
    }
    perClassAP.push(averagePrecision(s, p));
  }
  const present = perClassAP.filter((a) => !Number.isNaN(a));
  let lowestClass = -1;
  perClassAP.forEach((a, c) => {
    if (!Number.isNaN(a) && (lowestClass < 0 || a < perClassAP[lowestClass])) lowestClass = c;
  });
  const out: MultiLabelSummary = {
    numSamples: n,
    perClassAP,
    absentClasses: numClasses - present.length,
    mAP: generalizedMean(present, 1),
    geometricMean: generalizedMean(present, 0, zeroFloor),
    harmonicMean: generalizedMean(present, -1, zeroFloor),
    lowestAP: lowestClass < 0 ? NaN : perClassAP[lowestClass],
    lowestClass,
  };
  if (trainCounts !== undefined) {
    if (trainCounts.length !== numClasses) throw new RangeError(`trainCounts.length = ${trainCounts.length} must equal numClasses = ${numClasses}`);
    const groups = classGroups(trainCounts, manyThreshold, fewThreshold);
    const split = (g: Group): MultiLabelGroup | null => {
      const members = perClassAP.filter((_, c) => groups[c] === g);
      if (members.length === 0) return null;
      return { mAP: generalizedMean(members.filter((a) => !Number.isNaN(a)), 1), numClasses: members.length };
    };
    out.many = split('many');
    out.medium = split('medium');
    out.few = split('few');
  }
  return out;
}

/** sigmoid(logits) in float64: the per-class scores of a multi-label model. */
export function sigmoidScores(logits: ArrayLike<number>): Float64Array {
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i];
    out[i] = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
  }
  return out;
}

/** The share of samples whose highest-scored class is one of their labels (precision at 1). */
export function topHitRate(targets: ArrayLike<number>, scores: ArrayLike<number>, numClasses: number): number {
  const n = targets.length / numClasses;
  if (!(n > 0)) return NaN;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (scores[i * numClasses + c] > scores[i * numClasses + best]) best = c;
    hits += targets[i * numClasses + best] ? 1 : 0;
  }
  return hits / n;
}
