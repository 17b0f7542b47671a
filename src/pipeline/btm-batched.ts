/**
 * The BTM fine-tunes with `btm.parallel` > 1: groups of up to `parallel` members trained together
 * (MemberGroup: one native call per chunk of steps for the whole group) and evaluated together (one
 * pass over the images). Each member keeps what it has in the one-at-a-time loop: the same starting
 * weights, its own random stream (`btm-k`'s, per epoch), sample order, learning rates, SGD state and
 * checkpoint `btm/finetune-k.safetensors`; a member is finished (and skipped on resume) once its
 * checkpoint and rows are written, and an interrupted member restarts from the start, as before.
 */
import { saveCheckpoint } from '../checkpoint.js';
import type { TrainOptions } from '../model.js';
import { MemberGroup } from '../member-group.js';
import type { Device } from '../device.js';
import { Rng } from '../sampling/rng.js';
import { uniformEpoch } from '../sampling/samplers.js';
import { learningRates } from '../schedule.js';
import type { StateDict } from '../state-dict.js';
import { DivergenceError, RunInterrupted, type StageContext } from './context.js';
import { applyPerformance, LOSS_LIMIT, lossName, nonFiniteWeight, streamId } from './trainer.js';

const CHUNK_STEPS = 16;

export interface BatchedFineTunes {
  base: StateDict;
  subsets: Int32Array[];
  files: string[];
  parallel: number;
  train: Omit<TrainOptions, 'lr' | 'batchSize'>;
  /** Called before member k starts (subset file, progress event). */
  start: (k: number) => Promise<void>;
  /** Merge-validation indices and how to score a member's predictions (and logits, with `logits`) on them (only for non-uniform merges). */
  validation?: { indices: Int32Array; score: (result: { preds: Int32Array; logits?: Float32Array }) => { harmonicMean: number; geometricMean: number } };
  /** Only the members k for which this holds (a distributed run: this rank's). */
  only?: (k: number) => boolean;
  /** Records member k's test-set evaluation (only with btm.evalEach). */
  record?: (k: number, result: { preds: Int32Array; logits?: Float32Array; valPreds?: Int32Array }, seconds: number) => Promise<void>;
  /** The evaluations for `record` and `validation` return logits as well (a multi-label run scores them). */
  logits?: boolean;
}

export async function btmFineTunesBatched(ctx: StageContext, o: BatchedFineTunes): Promise<void> {
  const c = ctx.config.btm;
  const { run } = ctx;
  const bs = c.batchSize;
  const device = ctx.config.model.device as Device;
  const todo = o.subsets.map((_, k) => k).filter((k) => !run.isFinished(`btm-${k}`) && (o.only?.(k) ?? true));
  for (let i = 0; i < todo.length; i += o.parallel) {
    const ks = todo.slice(i, i + o.parallel);
    for (const k of ks) await o.start(k);
    const group = MemberGroup.fromState(
      { arch: ctx.meta.arch, numClasses: ctx.meta.numClasses, inChannels: ctx.meta.inChannels, imageSize: ctx.meta.imageSize, device, seed: ctx.config.seed },
      o.base,
      ks.length,
    );
    try {
      for (const m of group.members) {
        m.setOptimizer({ momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, trainable: c.trainable });
        applyPerformance(m, ctx.config);
      }
      const streams = ks.map((k) => new Rng(ctx.config.seed).fork(streamId(`btm-${k}`)));
      const started = performance.now();
      for (let epoch = 0; epoch < c.epochs; epoch++) {
        const orders = ks.map((k, j) => {
          const rng = streams[j].fork(epoch);
          group.members[j].manualSeed(rng.nextUint32());
          const order = uniformEpoch(o.subsets[k], rng);
          // as runEpochs: a last batch of one cannot pass train-mode BatchNorm
          return o.train.bnMode !== 'eval' && order.length % bs === 1 ? order.subarray(0, order.length - 1) : order;
        });
        const steps = orders.map((order) => Math.ceil(order.length / bs));
        const lossSum = ks.map(() => 0), accSum = ks.map(() => 0), done = ks.map(() => 0), firstLr = ks.map(() => NaN);
        const t0 = performance.now();
        for (let s = 0; s < Math.max(...steps); s += CHUNK_STEPS) {
          const live = ks.map((_, j) => j).filter((j) => s < steps[j]);
          const count = (j: number) => Math.min(CHUNK_STEPS, steps[j] - s);
          const lrs = live.map((j) => learningRates(c, epoch * steps[j] + s, count(j), steps[j]));
          if (s === 0) live.forEach((j, i) => (firstLr[j] = lrs[i][0]));
          const rs = await new MemberGroup(live.map((j) => group.members[j])).train(
            ctx.trainSet,
            live.map((j) => orders[j].subarray(s * bs, Math.min(orders[j].length, (s + count(j)) * bs))),
            { ...o.train, batchSize: bs, lr: lrs, stacked: c.stacked },
          );
          // one progress event per member, as the one-at-a-time loop sends them
          const elapsed = (performance.now() - started) / 1000;
          for (const [i, j] of live.entries()) {
            const r = rs[i];
            const step = `btm-${ks[j]}`;
            for (let t = 0; t < r.steps; t++) {
              // as runEpochs: a non-finite or exploded loss stops the stage, naming it and its lr
              if (!(Math.abs(r.losses[t]) <= LOSS_LIMIT)) {
                const what = Number.isFinite(r.losses[t]) ? `the loss exploded to ${r.losses[t].toPrecision(3)} (limit ${LOSS_LIMIT})` : `the loss became ${r.losses[t]}`;
                throw new DivergenceError('btm', step, epoch + 1, c.lr, what, `, batch ${s + t + 1} of ${steps[j]} (lr there ${lrs[i][t].toPrecision(3)})`);
              }
              (lossSum[j] += r.losses[t]), (accSum[j] += r.accs[t]), done[j]++;
            }
            const images = epoch * orders[j].length + Math.min(orders[j].length, (s + count(j)) * bs);
            const total = c.epochs * orders[j].length;
            const rate = images / elapsed;
            ctx.emit({
              type: 'train', stage: 'btm', step, epoch: epoch + 1, epochs: c.epochs, done: images, total,
              loss: lossSum[j] / done[j], acc: accSum[j] / done[j], imagesPerSec: rate, etaSeconds: (total - images) / rate,
            });
          }
          if (ctx.signal?.aborted) throw new RunInterrupted(`btm-${ks[0]}`);
        }
        // as runEpochs: weights checked once an epoch, an epoch record per member in metrics.jsonl
        const seconds = (performance.now() - t0) / 1000;
        for (const [j, k] of ks.entries()) {
          const step = `btm-${k}`;
          const bad = nonFiniteWeight(group.members[j]);
          if (bad) throw new DivergenceError('btm', step, epoch + 1, c.lr, `the weights became non-finite (${bad})`);
          const elapsed = (performance.now() - started) / 1000;
          ctx.emit({
            type: 'epoch', stage: 'btm', step, epoch: epoch + 1, epochs: c.epochs, lr: firstLr[j], loss: lossSum[j] / done[j],
            acc: accSum[j] / done[j], imagesPerSec: orders[j].length / seconds, seconds: seconds / ks.length,
            etaSeconds: (elapsed / (epoch + 1)) * (c.epochs - epoch - 1),
          });
          await run.logMetrics({
            kind: 'epoch', time: new Date().toISOString(), stage: 'btm', step, epoch: epoch + 1, epochs: c.epochs, lr: firstLr[j],
            loss: lossName(o.train), trainLoss: lossSum[j] / done[j], trainAccuracy: accSum[j] / done[j],
            imagesPerSec: orders[j].length / seconds, seconds: seconds / ks.length,
          });
        }
      }
      const seconds = (performance.now() - started) / 1000;
      for (const k of ks) run.addTime(`btm-${k}`, seconds / ks.length);
      for (const [j, k] of ks.entries()) {
        await saveCheckpoint(o.files[k], group.members[j], ctx.meta, { stage: 'btm', step: `btm-${k}`, subset: String(k) });
      }
      if (o.validation) {
        const v = o.validation;
        const rs = await group.evaluate(ctx.trainSet, { indices: v.indices, batchSize: ctx.config.eval.batchSize, normalize: ctx.data.normalize, logits: o.logits, stacked: c.stacked });
        for (const [j, k] of ks.entries()) run.state.scores[`btm-${k}`] = v.score(rs[j]);
      }
      if (o.record) {
        const t0 = performance.now();
        const rs = await group.evaluate(ctx.testSet, { batchSize: ctx.config.eval.batchSize, normalize: ctx.data.normalize, logits: o.logits, stacked: c.stacked });
        const each = (performance.now() - t0) / 1000 / ks.length;
        const val = ctx.data.val.length > 0
          ? await group.evaluate(ctx.trainSet, { indices: ctx.data.val, batchSize: ctx.config.eval.batchSize, normalize: ctx.data.normalize, stacked: c.stacked })
          : undefined;
        for (const [j, k] of ks.entries()) await o.record(k, { ...rs[j], valPreds: val?.[j].preds }, each);
      }
      for (const k of ks) await run.finish(`btm-${k}`);
    } finally {
      group.dispose();
    }
  }
}
