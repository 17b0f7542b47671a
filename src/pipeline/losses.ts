/** Turns a configured loss and the class counts into the native training options. */
import type { LossConfig } from '../config.js';
import type { TrainOptions } from '../model.js';

export type LossOptions = Pick<TrainOptions, 'loss' | 'logitOffsets' | 'labelSmoothing' | 'gmlPower'>;

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

export function lossOptions(loss: LossConfig, counts: readonly number[]): LossOptions {
  switch (loss.type) {
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
