/**
 * The epoch loop every stage uses: per-epoch sample order and random stream, a learning rate per
 * step from the schedule, the epoch sent to the native core in chunks (progress and Ctrl-C between
 * chunks), and a training-state checkpoint after each epoch so a killed run resumes where it was.
 */
import { loadTrainingState, saveTrainingState } from '../checkpoint.js';
import type { ScheduleConfig } from '../config.js';
import type { TrainOptions } from '../model.js';
import { Rng } from '../sampling/rng.js';
import { learningRates } from '../schedule.js';
import { moreTrainOptions, type MoreConfig } from '../more.js';
import type { Model } from '../model.js';
import { DivergenceError, isWriter, RunInterrupted, type StageContext } from './context.js';
import { stageOfStep } from './run-state.js';

export interface EpochLoop {
  step: string;
  schedule: ScheduleConfig;
  /** Sample order of an epoch (called once per epoch with that epoch's generator). */
  epochIndices: (epoch: number, rng: Rng) => Int32Array;
  train: Omit<TrainOptions, 'lr' | 'batchSize'>;
  /** MORE's rebalancing term, with the class counts of its weights (the model has low-rank factors). */
  more?: { config: MoreConfig; counts: readonly number[] };
  /** Write a training-state checkpoint after every epoch (long stages). */
  resumable: boolean;
  /**
   * In a distributed run, train on this rank alone (a BTM member it owns) instead of data-parallel
   * over the group (the default for a distributed run's stages).
   */
  local?: boolean;
}

const CHUNK_STEPS = 16;

/**
 * A batch loss above this is taken as divergence. Every loss here is a cross-entropy (GML, logit
 * adjustment and smoothing included): chance level is ln C, a trained model stays well below, and a
 * loss of 1000 needs logit gaps of about 1000, which only a diverging optimizer produces (lr 100 gives
 * 1e4 to 1e12 while the weights are still finite, and NaN a stage later).
 */
export const LOSS_LIMIT = 1e3;

/** FNV-1a, to derive a stream id from a step name. */
export function streamId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The name of the first float tensor of the model holding a NaN or an infinity, if any. */
export function nonFiniteWeight(model: Model): string | undefined {
  for (const e of model.stateDict()) {
    if (!(e.data instanceof Float32Array)) continue;
    const d = e.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return e.name;
  }
  return undefined;
}

/** The loss the trainer asks the native core for, by name (recorded in metrics.jsonl). */
export function lossName(t: EpochLoop['train']): string {
  if (t.loss === 'gml') return 'gml';
  if (t.loss === 'bce') return t.logitOffsets ? 'bce-logit-adjust' : t.classWeights ? 'bce-cb' : 'bce';
  if (t.labelSmoothing) return 'las';
  if (t.logitOffsets) return 'logit-adjust';
  return 'ce';
}

/** Trains `loop.schedule.epochs` epochs (resuming after the last checkpointed one); returns seconds spent. */
export async function runEpochs(ctx: StageContext, loop: EpochLoop): Promise<number> {
  const dist = loop.local ? undefined : ctx.dist;
  if (!dist) return trainEpochs(ctx, loop);
  // data-parallel: every step's gradients summed over the ranks; all ranks start from rank 0's model
  ctx.model.setProcessGroup(dist.group, { syncBatchNorm: dist.syncBatchNorm });
  try {
    return await trainEpochs(ctx, loop, dist);
  } finally {
    ctx.model.setProcessGroup(null);
  }
}

async function trainEpochs(ctx: StageContext, loop: EpochLoop, dist?: StageContext['dist']): Promise<number> {
  const { model, run } = ctx;
  const { epochs, batchSize } = loop.schedule;
  const stage = stageOfStep(loop.step);
  const loss = lossName(loop.train) + (loop.more ? '+more' : '');
  const partialFile = run.path(`${loop.step.replace(/\W/g, '_')}.partial.safetensors`);
  let first = 0;
  if (run.state.partial?.step === loop.step) {
    const metadata = await loadTrainingState(run.state.partial.file, model);
    first = Number(metadata.epoch) + 1;
    ctx.emit({ type: 'log', message: `${loop.step}: resuming after epoch ${first}/${epochs}` });
  }
  if (dist) await model.broadcastFrom(dist.group, 0);
  const trainBn = loop.train.bnMode !== 'eval';
  // data-parallel: every rank holds the same global order and trains its part of every global batch
  // (native globalBatch); a part needs 2+ samples where each rank's BatchNorm trains on its own part
  const minPart = dist && trainBn && !dist.syncBatchNorm ? 2 : 1;
  const stream = new Rng(ctx.config.seed).fork(streamId(loop.step));
  const started = performance.now();
  for (let epoch = first; epoch < epochs; epoch++) {
    const rng = stream.fork(epoch);
    // crops, flips and mixup: one stream for every rank, which draws for the whole global batch as
    // one process does (so a rank's part is those rows of the single-process batch)
    model.manualSeed(rng.nextUint32());
    let order = loop.epochIndices(epoch, rng);
    // a last batch of one cannot pass train-mode BatchNorm: leave that sample out of this epoch
    if (trainBn && order.length % batchSize === 1) order = order.subarray(0, order.length - 1);
    // distributed: a last global batch too small to give every rank a part is left out (every rank alike)
    const last = order.length % batchSize;
    if (dist && last > 0 && Math.floor(last / dist.worldSize) < minPart) order = order.subarray(0, order.length - last);
    const stepsPerEpoch = Math.ceil(order.length / batchSize);
    const globalImages = order.length;
    const t0 = performance.now();
    let lossSum = 0, accSum = 0, steps = 0, firstLr = NaN;
    for (let s = 0; s < stepsPerEpoch; s += CHUNK_STEPS) {
      const count = Math.min(CHUNK_STEPS, stepsPerEpoch - s);
      const chunk = order.subarray(s * batchSize, Math.min(order.length, (s + count) * batchSize));
      const lr = learningRates(loop.schedule, epoch * stepsPerEpoch + s, count, stepsPerEpoch);
      if (s === 0) firstLr = lr[0];
      const more = loop.more && moreTrainOptions(loop.more.config, loop.more.counts, epoch * stepsPerEpoch + s, count, epochs * stepsPerEpoch);
      const r = await model.trainEpoch(ctx.trainSet, chunk, {
        ...loop.train, batchSize, lr, more, ...(dist ? { globalBatch: true } : {}),
      });
      for (let i = 0; i < r.steps; i++) {
        if (!(Math.abs(r.losses[i]) <= LOSS_LIMIT)) {
          const what = Number.isFinite(r.losses[i]) ? `the loss exploded to ${r.losses[i].toPrecision(3)} (limit ${LOSS_LIMIT})` : `the loss became ${r.losses[i]}`;
          throw new DivergenceError(stage, loop.step, epoch + 1, loop.schedule.lr, what, `, batch ${s + i + 1} of ${stepsPerEpoch} (lr there ${lr[i].toPrecision(3)})`);
        }
        lossSum += r.losses[i];
        accSum += r.accs[i];
      }
      steps += r.steps;
      const done = (epoch - first) * order.length + Math.min(order.length, (s + count) * batchSize);
      const total = (epochs - first) * order.length;
      const rate = done / ((performance.now() - started) / 1000);
      ctx.emit({
        type: 'train', stage, step: loop.step, epoch: epoch + 1, epochs, done, total,
        loss: lossSum / steps, acc: accSum / steps, imagesPerSec: rate, etaSeconds: (total - done) / rate,
      });
      // the ranks stop at the same chunk: one small all-reduce of "this rank was asked to stop"
      const aborted = ctx.signal?.aborted ?? false;
      if (dist ? (await dist.group.allreduce([Float32Array.of(aborted ? 1 : 0)]))[0][0] > 0 : aborted) throw new RunInterrupted(loop.step);
    }
    // data-parallel with train-mode BatchNorm per rank: each rank's running statistics saw its own parts
    // of the batches; their mean makes the ranks' models equal again (as the weights already are). With
    // SyncBatchNorm every rank's statistics are already the global batches' ones, identical.
    if (dist && trainBn && !dist.syncBatchNorm) await model.averageBuffers(dist.group);
    // a loss can stay finite while a weight or a BatchNorm statistic does not: check them once an epoch
    const bad = nonFiniteWeight(model);
    if (bad) throw new DivergenceError(stage, loop.step, epoch + 1, loop.schedule.lr, `the weights became non-finite (${bad})`);
    const seconds = (performance.now() - t0) / 1000;
    run.addTime(loop.step, seconds);
    const imagesPerSec = globalImages / seconds;
    const elapsed = (performance.now() - started) / 1000;
    const epochRecord = { stage, step: loop.step, epoch: epoch + 1, epochs, lr: firstLr, loss: lossSum / steps, acc: accSum / steps, imagesPerSec, seconds };
    ctx.emit({ type: 'epoch', ...epochRecord, etaSeconds: (elapsed / (epoch + 1 - first)) * (epochs - epoch - 1) });
    await run.logMetrics({
      kind: 'epoch', time: new Date().toISOString(), stage, step: loop.step, epoch: epoch + 1, epochs, lr: firstLr, loss,
      trainLoss: epochRecord.loss, trainAccuracy: epochRecord.acc, imagesPerSec, seconds,
    });
    if (loop.resumable && epoch + 1 < epochs) {
      if (isWriter(ctx)) await saveTrainingState(partialFile, model, ctx.meta, { step: loop.step, epoch: String(epoch) });
      run.state.partial = { step: loop.step, epoch, file: partialFile };
      await run.save();
    }
  }
  return (performance.now() - started) / 1000;
}

/** The model's speed settings from the config: channels-last on any device, autocast on CUDA only. */
export function applyPerformance(model: Model, config: StageContext['config']): void {
  const cuda = config.model.device !== 'cpu';
  if (cuda || config.model.channelsLast) model.setPerformance({ amp: cuda ? config.model.amp : 'none', channelsLast: config.model.channelsLast });
}
