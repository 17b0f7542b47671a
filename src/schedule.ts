/** Learning-rate schedules, evaluated per optimizer step (so an epoch can be sent as one lr array). */
import type { ScheduleConfig } from './config.js';

/**
 * Learning rate at global step `step` (0-based) of `stepsPerEpoch * epochs`:
 * linear warm-up from lr/warmupSteps to lr over `warmupEpochs`, then cosine (to minLr, over the
 * remaining steps), step decay (x gamma at each milestone epoch) or constant.
 */
export function learningRate(cfg: ScheduleConfig, step: number, stepsPerEpoch: number): number {
  const total = Math.max(1, cfg.epochs * stepsPerEpoch);
  const warmup = Math.min(total, Math.round(cfg.warmupEpochs * stepsPerEpoch));
  if (step < warmup) return (cfg.lr * (step + 1)) / warmup;
  switch (cfg.schedule) {
    case 'constant':
      return cfg.lr;
    case 'step': {
      const epoch = Math.floor(step / stepsPerEpoch);
      const passed = cfg.milestones.filter((m) => epoch >= m).length;
      return cfg.lr * cfg.gamma ** passed;
    }
    case 'cosine': {
      const t = (step - warmup) / Math.max(1, total - warmup);
      return cfg.minLr + (cfg.lr - cfg.minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
    }
  }
}

/** Learning rates for steps [from, from + count). */
export function learningRates(cfg: ScheduleConfig, from: number, count: number, stepsPerEpoch: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => learningRate(cfg, from + i, stepsPerEpoch));
}
