/**
 * MORE (model rebalancing, Luo et al. 2025) on the TypeScript side: the config a stage takes, the
 * sinusoidal schedule of the rebalancing coefficient and the class weights of the discrepancy. The
 * low-rank factors and the loss live in native code (native/models/low_rank.*, native/train/more.*).
 * The choices the paper leaves open are listed in the README ("MORE: choices").
 */
import { z } from 'zod';
import type { MoreTrainOptions } from './model.js';

/** `<stage>.more`: MORE on a training stage (pretrain, fc, posttrain). */
export const MoreSchema = z.strictObject({
  /** Rank r of every B A; at most min(out, fan-in) of each modified layer (checked natively). */
  rank: z.number().int().min(1).max(4096).default(8),
  /** Peak amplitude A of the coefficient schedule. */
  amplitude: z.number().min(0).max(1e4).default(1),
  /** 'sine': A sin(pi t / T) over the stage's T steps (the paper's sinusoidal schedule); 'constant': A. */
  schedule: z.enum(['sine', 'constant']).default('sine'),
  /** The discrepancy between the full and the general path: squared l2 of the logits, or KL. */
  discrepancy: z.enum(['l2', 'kl']).default('l2'),
  /** Module paths or prefixes of the modified layers ('fc', 'layer3'); default: every trained conv / linear layer. */
  layers: z.array(z.string().min(1)).min(1).optional(),
  /** Gradients through the general path too (false: it is computed without gradients, cheaper). */
  generalGrad: z.boolean().default(true),
});
export type MoreConfig = z.output<typeof MoreSchema>;

/** The coefficient at step t (0-based) of a stage of `total` steps. */
export function moreCoefficient(cfg: Pick<MoreConfig, 'amplitude' | 'schedule'>, t: number, total: number): number {
  if (cfg.schedule === 'constant') return cfg.amplitude;
  return cfg.amplitude * Math.sin((Math.PI * t) / Math.max(1, total));
}

/** Coefficients for steps [from, from + count) of a stage of `total` steps. */
export function moreCoefficients(cfg: Pick<MoreConfig, 'amplitude' | 'schedule'>, from: number, count: number, total: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => moreCoefficient(cfg, from + i, total));
}

/**
 * Weight of each class in the discrepancy: w_y = C * n_y / sum n (C times the class prior), so the
 * head's samples tie the two paths together hardest, the tail's leave the low-rank part free, and a
 * balanced set weighs every sample 1.
 */
export function moreClassWeights(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => (total > 0 ? (counts.length * n) / total : 1));
}

/** The native trainEpoch `more` options of a stage's steps [from, from + count) out of `total`. */
export function moreTrainOptions(cfg: MoreConfig, counts: readonly number[], from: number, count: number, total: number): MoreTrainOptions {
  return {
    coefficient: moreCoefficients(cfg, from, count, total),
    classWeights: moreClassWeights(counts),
    discrepancy: cfg.discrepancy,
    generalGrad: cfg.generalGrad,
  };
}
