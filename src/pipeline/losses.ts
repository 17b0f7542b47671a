/** Turns a configured loss and the class counts into the native training options. */
import type { LossConfig } from '../config.js';
import type { TrainOptions } from '../model.js';

export type LossOptions = Pick<TrainOptions, 'loss' | 'logitOffsets' | 'labelSmoothing' | 'gmlPower' | 'classWeights'>;

/**
 * MiSLAS label-aware smoothing: eps_y = eps_tail + (eps_head - eps_tail) * sin(pi (n_y - n_min) / (2 (n_max - n_min))),
 * so the most frequent class gets eps_head and the rarest eps_tail. When every class has the same
 * count (a balanced set) each gets eps_head.
 */
export function labelAwareSmoothing(counts: readonly number[], epsHead: number, epsTail: number): number[] {
  const nMax = Math.max(...counts), nMin = Math.min(...counts);
  if (nMax === nMin) return counts.map(() => epsHead);
  return counts.map((n) => epsTail + (epsHead - epsTail) * Math.sin((Math.PI * (n - nMin)) / (2 * (nMax - nMin))));
}

/** log of the class prior (counts / total); a class with no images gets log(1e-12) instead of -inf. */
export function logPrior(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => Math.log(Math.max(n, 1e-12) / total));
}

/**
 * Class-balanced weights (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples"):
 * w_c = (1 - beta) / (1 - beta^n_c), normalised so that they sum to the number of classes; beta = 0
 * gives all 1, beta -> 1 weights by 1 / n_c. For multi-label sets n_c counts the images that contain
 * class c; a class with no image counts as 1.
 */
export function classBalancedWeights(counts: readonly number[], beta: number): number[] {
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`class-balanced beta must be in [0, 1), got ${beta}`);
  const raw = counts.map((n) => (1 - beta) / (1 - beta ** Math.max(n, 1)));
  const total = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => (w * counts.length) / total);
}

/**
 * The per-class log prior odds of a multi-label set, log(pi_c / (1 - pi_c)) with pi_c = n_c / n (the
 * share of the n images that contain class c, clamped to [1e-12, 1 - 1e-12]): logit-adjusted BCE adds
 * tau times these to the logits inside the loss (Menon et al.'s logit adjustment applied to each
 * class's binary problem), so rare classes must clear a higher bar in training and none at inference.
 */
export function logPriorOdds(counts: readonly number[], n: number): number[] {
  return counts.map((c) => {
    const p = Math.min(Math.max(c / n, 1e-12), 1 - 1e-12);
    return Math.log(p / (1 - p));
  });
}

/**
 * The native options of a configured loss. `counts`: training images per class (multi-label: images
 * containing the class); `total`: training images (default: the sum of counts, right for one label).
 */
export function lossOptions(loss: LossConfig, counts: readonly number[], total = counts.reduce((a, b) => a + b, 0)): LossOptions {
  switch (loss.type) {
    case 'bce':
      return { loss: 'bce' };
    case 'bce-logit-adjust':
      return { loss: 'bce', logitOffsets: logPriorOdds(counts, total).map((v) => loss.tau * v) };
    case 'bce-cb':
      return { loss: 'bce', classWeights: classBalancedWeights(counts, loss.beta) };
    case 'ce':
      return {};
    case 'logit-adjust':
      return { logitOffsets: logPrior(counts).map((v) => loss.tau * v) };
    case 'las':
      return { labelSmoothing: labelAwareSmoothing(counts, loss.epsHead, loss.epsTail) };
    case 'gml':
      return { loss: 'gml', logitOffsets: counts.map((n) => Math.log(Math.max(n, 1e-12))), gmlPower: loss.p };
  }
}
