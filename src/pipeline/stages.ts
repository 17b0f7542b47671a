/**
 * The stages of a run. Each leaves its result in ctx.model, writes its checkpoint and evaluates:
 *   pretrain  – whole model, the long-tailed set, uniform sampling;
 *   fc        – classifier only, all data, BatchNorm frozen;
 *   lift      – LIFT: the trunk frozen, PEFT modules + (cosine) head on the long-tailed set, LA loss;
 *   btm       – N_D fine-tunes on balanced few-shot subsets, then one merged model (with trainable
 *               'peft': of the lift modules and head only);
 *   posttrain – classifier (and optional LWS) on class-aware batches, optional shift-BN.
 */
import { rm, writeFile } from 'node:fs/promises';
import { readCheckpoint, saveCheckpoint, saveState } from '../checkpoint.js';
import { adaptiveWeights, greedySoup, mergeFiles } from '../merge.js';
import { summarize } from '../metrics.js';
import { formatSplitList } from '../sampling/longtail.js';
import { Rng } from '../sampling/rng.js';
import { btmSubsets, classAwareEpoch, groupByClass, uniformEpoch } from '../sampling/samplers.js';
import type { StateDict } from '../state-dict.js';
import { isWriter, type StageContext } from './context.js';
import { allreduceMerge } from '../distributed/merge.js';
import { lossOptions } from './losses.js';
import { rowFromMultiLabel, rowFromSummary, validationFromSummary, type ResultRow } from './run-state.js';
import { sigmoidScores, summarizeMultiLabel, topHitRate } from '../metrics-multilabel.js';
import { formatLabelSetLines, multiLabelBtmSubsets, positivesByClass } from '../sampling/multilabel.js';
import { btmFineTunesBatched } from './btm-batched.js';
import { runEpochs, type EpochLoop } from './trainer.js';
import type { MoreConfig } from '../more.js';
import { initHeadFromClassMeans, peftMeta, peftOptions, preparePeftModel } from '../lift.js';
import { defaultTtaResize, evaluateFiveCrop } from '../tta.js';

/**
 * Evaluates ctx.model on the test set (or takes `given` predictions made elsewhere) and records a result
 * row: per-class recall, or for a multi-label run per-class AP of the sigmoid scores (ResultRow.metric).
 */
export async function evaluateStep(ctx: StageContext, step: string, stage: string, label: string, given?: { preds: Int32Array; logits?: Float32Array; valPreds?: Int32Array; seconds: number }): Promise<void> {
  ctx.emit({ type: 'eval', step, stage, label });
  const t0 = performance.now();
  const multi = ctx.data.multiLabel;
  const { preds, logits } = given ?? (await ctx.model.evaluate(ctx.testSet, { batchSize: ctx.config.eval.batchSize, normalize: ctx.data.normalize, logits: multi !== undefined }));
  const opts = { trainCounts: ctx.data.counts, manyThreshold: ctx.config.eval.manyThreshold, fewThreshold: ctx.config.eval.fewThreshold };
  let row: ResultRow;
  if (multi) {
    const scores = sigmoidScores(logits!);
    const s = summarizeMultiLabel(multi.testTargets, scores, ctx.meta.numClasses, opts);
    ctx.run.addTime(`${step}:eval`, given?.seconds ?? (performance.now() - t0) / 1000);
    row = rowFromMultiLabel(step, stage, label, s, topHitRate(multi.testTargets, scores, ctx.meta.numClasses), ctx.run.state.timings[step] ?? 0);
  } else {
    const s = summarize(ctx.data.test.labels, preds, ctx.meta.numClasses, opts);
    ctx.run.addTime(`${step}:eval`, given?.seconds ?? (performance.now() - t0) / 1000);
    row = rowFromSummary(step, stage, label, s, ctx.run.state.timings[step] ?? 0);
    const val = ctx.data.val;
    if (val.length > 0) {
      // the validation split: the same model on the held-out training images (not timed as evaluation)
      const valPreds = given?.valPreds ?? (await ctx.model.evaluate(ctx.trainSet, { indices: val, batchSize: ctx.config.eval.batchSize, normalize: ctx.data.normalize })).preds;
      row.val = validationFromSummary(summarize(Array.from(val, (i) => ctx.data.train.labels[i]), valPreds, ctx.meta.numClasses, opts));
    }
  }
  await ctx.run.addRow(row);
  ctx.emit({ type: 'row', row });
}

/**
 * eval.tta 'five-crop': the final model's test-time ensemble (src/tta.ts) as one more row, step 'tta',
 * after the last stage's (whose row stays as it was).
 */
export async function ttaStep(ctx: StageContext): Promise<void> {
  const size = ctx.meta.imageSize;
  const resize = ctx.config.eval.ttaResize ?? defaultTtaResize(size);
  const label = `${ctx.run.state.rows.at(-1)?.label ?? 'final model'} + five-crop TTA (${size} -> ${resize})`;
  ctx.emit({ type: 'step', step: 'tta', stage: 'tta', message: `test-time ensemble: five ${size}x${size} crops of the test images upscaled to ${resize}x${resize}, logits averaged` });
  const t0 = performance.now();
  const r = await evaluateFiveCrop(ctx.model, ctx.data.test, { resize, normalize: ctx.data.normalize, batchSize: ctx.config.eval.batchSize });
  await evaluateStep(ctx, 'tta', 'tta', label, { ...r, seconds: (performance.now() - t0) / 1000 });
}

/**
 * runEpochs with MORE when the stage asks for it: low-rank factors on the trained layers for the
 * stage, merged into the weights when it ends (the checkpoint has the plain layout).
 */
async function runStage(ctx: StageContext, loop: EpochLoop, more: MoreConfig | undefined, counts: readonly number[]): Promise<void> {
  if (!more) {
    await runEpochs(ctx, loop);
    return;
  }
  ctx.model.setLowRank({ rank: more.rank, layers: more.layers });
  const layers = ctx.model.lowRank!.layers;
  ctx.emit({ type: 'log', message: `${loop.step}: MORE, rank ${more.rank} on ${layers.length} layer(s) (${layers.length > 4 ? `${layers.slice(0, 4).join(', ')}, ...` : layers.join(', ')}), amplitude ${more.amplitude}, ${more.schedule} schedule, ${more.discrepancy}` });
  await runEpochs(ctx, { ...loop, more: { config: more, counts } });
  ctx.model.mergeLowRank();
}

async function finishStep(ctx: StageContext, step: string, file: string, stage: string, label: string): Promise<void> {
  // a distributed run: the ranks' models are equal; rank 0 writes and evaluates
  if (isWriter(ctx)) {
    await saveCheckpoint(file, ctx.model, ctx.meta, { stage, step });
    await evaluateStep(ctx, step, stage, label);
  }
  await ctx.run.finish(step);
  if (isWriter(ctx)) await rm(ctx.run.path(`${step.replace(/\W/g, '_')}.partial.safetensors`), { force: true });
}

/** Loads a finished step's checkpoint into ctx.model (used when resuming past it). */
export async function restoreStep(ctx: StageContext, file: string): Promise<void> {
  const { state, meta } = await readCheckpoint(file);
  preparePeftModel(ctx.model, meta.peft); // AdaptFormer / adapters / cosine head: attached before loading
  if (ctx.model.peft) ctx.meta.peft = peftMeta(ctx.model.peft);
  ctx.model.loadStateDict(state);
}

/**
 * Attaches the lift.* modules to ctx.model (once) and, with headInit 'class-means', sets the head to
 * the normalised class means of the frozen features on the long-tailed training set.
 */
async function attachLift(ctx: StageContext, step: string): Promise<void> {
  const c = ctx.config.lift;
  if (ctx.model.peft) return;
  const opts = peftOptions(c, ctx.meta.arch);
  ctx.model.setPeft(opts);
  ctx.meta.peft = peftMeta(ctx.model.peft!);
  const p = ctx.model.peft!;
  ctx.emit({ type: 'log', message: `${step}: PEFT modules [${p.modules.join(', ') || 'none'}]${p.rank ? `, LoRA rank ${p.rank}` : ''}` +
    `${p.bottleneck ? `, AdaptFormer width ${p.bottleneck}` : ''}, ${p.head} head${p.cosineScale ? ` (scale ${p.cosineScale})` : ''}` });
  if (c.head === 'cosine' && c.headInit === 'class-means') {
    await initHeadFromClassMeans(ctx.model, ctx.trainSet, ctx.data.split, ctx.data.train.labels, { normalize: ctx.data.normalize, batchSize: ctx.config.eval.batchSize });
  }
}

export async function lift(ctx: StageContext): Promise<void> {
  const c = ctx.config.lift;
  await attachLift(ctx, 'lift');
  ctx.model.setOptimizer({ momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, trainable: 'peft' });
  const p = ctx.model.peft!;
  ctx.emit({ type: 'step', step: 'lift', stage: 'lift', message: `LIFT: ${p.trainedParameters.toLocaleString('en-US')} of ${ctx.model.info.numParameters.toLocaleString('en-US')} parameters train, ${c.epochs} epochs, ${c.loss.type} loss` });
  await runEpochs(ctx, {
    step: 'lift',
    schedule: c,
    epochIndices: (_e, rng) => uniformEpoch(ctx.data.split, rng),
    train: {
      cropPadding: c.cropPadding, hflip: c.hflip, mixupAlpha: c.mixupAlpha, normalize: ctx.data.normalize,
      ...lossOptions(c.loss, ctx.data.counts),
    },
    // LoRA / SSF are merged in a saved state and restart from the no-op: the stage restarts as a whole
    resumable: false,
  });
  await finishStep(ctx, 'lift', ctx.run.path('lift.safetensors'), 'lift', `LIFT (${p.modules.join('+') || 'head'}, ${p.head} head)`);
}

export async function pretrain(ctx: StageContext): Promise<void> {
  const c = ctx.config.pretrain;
  ctx.emit({ type: 'step', step: 'pretrain', stage: 'pretrain', message: `pre-training ${ctx.meta.arch} on ${ctx.data.split.length} images, ${c.epochs} epochs` });
  ctx.model.setOptimizer({ momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, trainable: 'all' });
  await runStage(ctx, {
    step: 'pretrain',
    schedule: c,
    epochIndices: (_e, rng) => uniformEpoch(ctx.data.split, rng),
    train: {
      cropPadding: c.cropPadding, hflip: c.hflip, mixupAlpha: c.mixupAlpha, normalize: ctx.data.normalize,
      ...lossOptions(c.loss, ctx.data.counts, ctx.data.split.length),
    },
    resumable: true,
  }, c.more, ctx.data.counts);
  await finishStep(ctx, 'pretrain', ctx.run.path('pretrain.safetensors'), 'pretrain', 'pre-train');
}

export async function fc(ctx: StageContext): Promise<void> {
  const c = ctx.config.fc;
  ctx.emit({ type: 'step', step: 'fc', stage: 'fc', message: `re-fitting the classifier, ${c.epochs} epochs` });
  ctx.model.setOptimizer({ momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, trainable: 'classifier' });
  await runStage(ctx, {
    step: 'fc',
    schedule: c,
    epochIndices: (_e, rng) => uniformEpoch(ctx.data.split, rng),
    train: { bnMode: 'eval', normalize: ctx.data.normalize, ...lossOptions(c.loss, ctx.data.counts, ctx.data.split.length) },
    resumable: true,
  }, c.more, ctx.data.counts);
  await finishStep(ctx, 'fc', ctx.run.path('fc.safetensors'), 'fc', 'FC');
}

/** BTM: fine-tune a copy of the current model on each balanced subset, then merge the copies. */
export async function btm(ctx: StageContext): Promise<void> {
  const c = ctx.config.btm;
  const { run, model, data } = ctx;
  const numClasses = ctx.meta.numClasses;
  const multi = data.multiLabel;
  // multi-label: per class, the images that contain it (an image under each of its classes)
  const byClass = multi ? positivesByClass(data.split, multi.trainSets, numClasses) : groupByClass(data.split, data.train.labels, numClasses);
  const subsetOptions = { numSubsets: c.numSubsets, perClass: c.perClass };
  const { subsets, shortClasses } = multi
    ? multiLabelBtmSubsets(byClass, subsetOptions, new Rng(ctx.config.seed).fork(0xb7))
    : btmSubsets(byClass, subsetOptions, new Rng(ctx.config.seed).fork(0xb7));
  if (shortClasses.length) {
    ctx.emit({ type: 'log', message: `btm: ${shortClasses.length} class(es) have fewer than ${c.perClass} images and give all they have: ${shortClasses.join(', ')}` });
  }
  if (c.trainable === 'peft') await attachLift(ctx, 'btm');
  const base = model.stateDict();
  const files = subsets.map((_, k) => run.path('btm', `finetune-${k}.safetensors`));
  // The merge-validation set for adaptive / greedy merges: the union of the balanced subsets. A member
  // is scored by the harmonic / geometric mean of its per-class recall there, or on a multi-label set of
  // its per-class AP (sigmoid scores; every class has positives in the union), as the merge's name says.
  const validation = Int32Array.from(new Set(subsets.flatMap((s) => Array.from(s)))).sort();
  const validationTargets = multi && gatherRows(multi.trainTargets, validation, numClasses);
  const scoreOfResult = (r: { preds: Int32Array; logits?: Float32Array }): { harmonicMean: number; geometricMean: number } => {
    const s = validationTargets
      ? summarizeMultiLabel(validationTargets, sigmoidScores(r.logits!), numClasses)
      : summarize(Array.from(validation, (i) => data.train.labels[i]), r.preds, numClasses);
    return { harmonicMean: s.harmonicMean, geometricMean: s.geometricMean };
  };
  const scoreOf = async () =>
    scoreOfResult(await model.evaluate(ctx.trainSet, { indices: validation, batchSize: ctx.config.eval.batchSize, normalize: data.normalize, logits: multi !== undefined }));
  const startMember = async (k: number) => {
    await writeFile(run.path('btm', `subset-${k}.txt`), multi
      ? formatLabelSetLines(subsets[k], multi.trainSets)
      : formatSplitList(subsets[k], data.train.labels, { numClasses, seed: ctx.config.seed, profile: 'exp', imbalanceFactor: 1 }));
    ctx.emit({ type: 'step', step: `btm-${k}`, stage: 'btm', message: `BTM fine-tune ${k + 1}/${subsets.length} on ${subsets[k].length} images, ${c.epochs} epochs` });
  };
  const trainOptions = {
    cropPadding: c.cropPadding, hflip: c.hflip, mixupAlpha: c.mixupAlpha, normalize: data.normalize,
    ...(multi
      ? lossOptions(c.loss, positivesByClass(subsets[0], multi.trainSets, numClasses).map((l) => l.length), subsets[0].length)
      : lossOptions(c.loss, byClass.map((l) => Math.min(l.length, c.perClass)))),
  };

  // btm.parallel (default: all members at once) > 1: members trained and evaluated together
  // a distributed run fans the members out: rank r fine-tunes members r, r + W, r + 2W, ...
  const dist = ctx.dist;
  const mine = (k: number) => !dist || k % dist.worldSize === dist.rank;
  const ownCount = subsets.filter((_, k) => mine(k)).length;
  // member rows are written by the writer; with several ranks it evaluates the others' members after
  // the merge (from their checkpoints), so only its own are evaluated here
  const evalHere = c.evalEach && isWriter(ctx);
  // (the batched member group trains whole models: PEFT fine-tunes run one after another)
  const parallel = c.trainable === 'peft' ? 1 : Math.min(c.parallel ?? ownCount, ownCount);
  if (parallel > 1) {
    await btmFineTunesBatched(ctx, {
      base, subsets, files, parallel, train: trainOptions, start: startMember, only: mine,
      validation: c.merge !== 'uniform' ? { indices: validation, score: scoreOfResult } : undefined,
      record: evalHere ? (k, r, seconds) => evaluateStep(ctx, `btm-${k}`, 'btm', `BTM fine-tune #${k + 1}`, { ...r, seconds }) : undefined,
      logits: multi !== undefined,
    });
  }
  for (const [k, subset] of subsets.entries()) {
    const step = `btm-${k}`;
    if (run.isFinished(step) || !mine(k)) continue;
    await startMember(k);
    model.loadStateDict(base);
    model.setOptimizer({ momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, trainable: c.trainable });
    await runEpochs(ctx, {
      step,
      schedule: c,
      epochIndices: (_e, rng) => uniformEpoch(subset, rng),
      train: trainOptions,
      resumable: false,
      local: true,
    });
    await saveCheckpoint(files[k], model, ctx.meta, { stage: 'btm', step, subset: String(k) });
    if (c.merge !== 'uniform') run.state.scores[step] = await scoreOf();
    if (evalHere) await evaluateStep(ctx, step, 'btm', `BTM fine-tune #${k + 1}`);
    await run.finish(step);
  }
  if (dist) await gatherMembers(ctx, subsets.length, files, mine);

  ctx.emit({ type: 'step', step: 'btm-merge', stage: 'btm', message: `merging ${files.length} fine-tuned models (${c.merge})` });
  const t0 = performance.now();
  const key = c.merge.endsWith('gmean') ? 'geometricMean' : 'harmonicMean';
  const scores = subsets.map((_, k) => run.state.scores[`btm-${k}`]?.[key] ?? NaN);
  let merged: StateDict;
  let members = files.map((_, k) => k);
  let weights = files.map(() => 1);
  if (dist && c.merge === 'uniform') {
    // one all-reduce of the members' weights, each rank contributing those it fine-tuned
    const own = await Promise.all(files.filter((_, k) => mine(k)).map(async (f) => ({ state: (await readCheckpoint(f)).state, weight: 1 })));
    merged = await allreduceMerge(dist.group, own, base, files.length);
  } else if (dist && !isWriter(ctx)) {
    // adaptive / greedy merges are computed by rank 0 (from the members' checkpoints) and sent out
    await model.broadcastFrom(dist.group, 0);
    merged = model.stateDict();
  } else if (c.merge === 'uniform') {
    merged = await mergeFiles(files);
  } else if (c.merge.startsWith('adaptive')) {
    weights = adaptiveWeights(scores);
    merged = await mergeFiles(files, { weights });
  } else {
    const soup = await greedySoup(
      files.map((_, k) => ({ id: String(k), score: scores[k] })),
      async (id) => (await readCheckpoint(files[Number(id)])).state,
      async (state) => {
        model.loadStateDict(state);
        return (await scoreOf())[key];
      },
    );
    merged = soup.state;
    members = soup.members.map(Number);
    weights = members.map(() => 1);
  }
  const total = weights.reduce((a, b) => a + b, 0);
  (run.state.merges ??= {})['btm-merge'] = { strategy: c.merge, members, weights: weights.map((w) => w / total) };
  const mergedFile = run.path('btm', 'merged.safetensors');
  model.loadStateDict(merged);
  if (dist && c.merge !== 'uniform' && isWriter(ctx)) await model.broadcastFrom(dist.group, 0);
  if (isWriter(ctx)) await saveState(mergedFile, merged, ctx.meta, { stage: 'btm', step: 'btm-merge', strategy: c.merge, members: members.join(',') });
  run.addTime('btm-merge', (performance.now() - t0) / 1000);
  if (isWriter(ctx)) await evaluateStep(ctx, 'btm-merge', 'btm', `BTM merged (${c.merge}${members.length < files.length ? `, ${members.length} of ${files.length}` : ''})`);
  await run.finish('btm-merge');
}

/** Rows `indices` of a row-major [n * width] array, in that order. */
function gatherRows(rows: Uint8Array, indices: Int32Array, width: number): Uint8Array {
  const out = new Uint8Array(indices.length * width);
  indices.forEach((i, k) => out.set(rows.subarray(i * width, (i + 1) * width), k * width));
  return out;
}

/**
 * A distributed BTM stage after each rank has fine-tuned its members: every rank learns the others'
 * merge-validation scores (one all-reduce), waits until every checkpoint is written, and records every
 * member as finished; with btm.evalEach, rank 0 evaluates the members of the other ranks from their
 * checkpoints (every rank must see the run directory).
 */
async function gatherMembers(ctx: StageContext, n: number, files: string[], mine: (k: number) => boolean): Promise<void> {
  const { run, model } = ctx;
  const dist = ctx.dist!;
  const local = new Float32Array(2 * n);
  for (let k = 0; k < n; k++) {
    const s = run.state.scores[`btm-${k}`];
    if (mine(k) && s) [local[2 * k], local[2 * k + 1]] = [s.harmonicMean, s.geometricMean];
  }
  const [all] = await dist.group.allreduce([local]);
  if (ctx.config.btm.merge !== 'uniform') {
    for (let k = 0; k < n; k++) run.state.scores[`btm-${k}`] = { harmonicMean: all[2 * k], geometricMean: all[2 * k + 1] };
  }
  if (isWriter(ctx) && ctx.config.btm.evalEach) {
    const current = model.stateDict();
    for (let k = 0; k < n; k++) {
      if (mine(k) || run.state.rows.some((r) => r.step === `btm-${k}`)) continue;
      model.loadStateDict((await readCheckpoint(files[k])).state);
      await evaluateStep(ctx, `btm-${k}`, 'btm', `BTM fine-tune #${k + 1}`);
    }
    model.loadStateDict(current);
  }
  for (let k = 0; k < n; k++) await run.finish(`btm-${k}`);
}

export async function posttrain(ctx: StageContext): Promise<void> {
  const c = ctx.config.posttrain;
  const { data } = ctx;
  // class-aware batches; multi-label: drawn per class from the images that contain it
  const byClass = data.multiLabel
    ? positivesByClass(data.split, data.multiLabel.trainSets, ctx.meta.numClasses)
    : groupByClass(data.split, data.train.labels, ctx.meta.numClasses);
  const recipe = `${c.loss.type}${c.lws ? ' + LWS' : ''}${c.shiftBn ? ' + shift-BN' : ''}`;
  ctx.emit({ type: 'step', step: 'posttrain', stage: 'posttrain', message: `post-training the classifier (${recipe}), ${c.epochs} epochs` });
  ctx.model.setOptimizer({ momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, trainable: 'classifier', lws: c.lws });
  await runStage(ctx, {
    step: 'posttrain',
    schedule: c,
    // class-aware batches; an epoch draws as many images as the long-tailed set holds
    epochIndices: (_e, rng) => classAwareEpoch(byClass, data.split.length, rng, { perClass: c.perClass }),
    train: {
      bnMode: c.shiftBn ? 'train' : 'eval', mixupAlpha: c.mixupAlpha, normalize: data.normalize,
      ...lossOptions(c.loss, data.counts, data.split.length),
    },
    // short stage; with LWS the scale is folded into fc at every export, so it restarts as a whole
    resumable: false,
  }, c.more, data.counts);
  ctx.model.setOptimizer({ trainable: 'all' }); // folds the LWS scale into fc for good
  await finishStep(ctx, 'posttrain', ctx.run.path('posttrain.safetensors'), 'posttrain', `post-train (${recipe})`);
}
