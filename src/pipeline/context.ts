/** What every stage of a run shares: the model, the data on the device, the run directory, events. */
import type { ModelMeta } from '../checkpoint.js';
import type { Config } from '../config.js';
import type { Dataset } from '../dataset.js';
import type { Model } from '../model.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import type { RunData } from './data.js';
import type { ResultRow, RunDir } from './run-state.js';

export type ProgressEvent =
  | { type: 'step'; step: string; stage: string; message: string }
  | {
      type: 'train';
      /** The stage ('btm') and its step ('btm-3'). */
      stage: string;
      step: string;
      epoch: number;
      epochs: number;
      /** Images processed in this step so far, and in all. */
      done: number;
      total: number;
      loss: number;
      acc: number;
      imagesPerSec: number;
      etaSeconds: number;
    }
  /** An epoch finished (its record in metrics.jsonl). */
  | {
      type: 'epoch'; stage: string; step: string; epoch: number; epochs: number; lr: number; loss: number; acc: number;
      imagesPerSec: number; seconds: number;
      /** Seconds left in this step at the rate so far. */
      etaSeconds: number;
    }
  /** An evaluation on the test set starts (its row follows). */
  | { type: 'eval'; step: string; stage: string; label: string }
  | { type: 'row'; row: ResultRow }
  | { type: 'log'; message: string };

export interface StageContext {
  config: Config;
  run: RunDir;
  data: RunData;
  trainSet: Dataset;
  testSet: Dataset;
  model: Model;
  meta: ModelMeta;
  signal?: AbortSignal;
  emit: (e: ProgressEvent) => void;
  /** A distributed run: this rank's group. Rank 0 writes the run directory; the others keep it in memory. */
  dist?: {
    group: ProcessGroup; rank: number; worldSize: number;
    /** Data-parallel BatchNorm in train mode over the global batch (SyncBatchNorm) or each rank's part. */
    syncBatchNorm: boolean;
  };
}

/** Whether this process writes the run directory (rank 0 of a distributed run, or a plain run). */
export function isWriter(ctx: Pick<StageContext, 'dist'>): boolean {
  return !ctx.dist || ctx.dist.rank === 0;
}

/** Thrown inside a run when its signal fires; the run ends with status 'interrupted'. */
export class RunInterrupted extends Error {
  override name = 'RunInterrupted';
  constructor(readonly step: string) {
    super(`run interrupted during step '${step}'`);
  }
}

/** Training diverged: a loss or weight stopped being finite, or the loss exploded. Names the stage, its step, epoch and learning rate. */
export class DivergenceError extends Error {
  override name = 'DivergenceError';
  constructor(
    readonly stage: string,
    readonly step: string,
    readonly epoch: number,
    readonly lr: number,
    what: string,
    where = '',
  ) {
    super(`${stage}${step === stage ? '' : ` (${step})`}: ${what} in epoch ${epoch}${where}; ${stage}.lr is ${lr}: lower --${stage}.lr`);
  }
}
