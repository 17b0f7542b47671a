/**
 * runPipeline: a whole run (data, split, stages, checkpoints, results, chart) from one config.
 * A run directory can be resumed after a crash, a kill or an abort: finished steps are skipped and a
 * step interrupted mid-way restarts from its last finished epoch (long stages) or from its start.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../atomic-file.js';
import { readCheckpoint, type ModelMeta } from '../checkpoint.js';
import { importPlainState, readInitFile, type InitFormat, type PlainImport } from '../checkpoint-import.js';
import { configDiff, ConfigError, parseConfig, STAGES, type Config, type ConfigInput, type StageName } from '../config.js';
import { Dataset } from '../dataset.js';
import { buildInfo, cudaAvailable, deviceCount, getNumThreads, setNumThreads, type Device } from '../device.js';
import { Model } from '../model.js';
import { recallChartPng, recallChartSvg } from '../report/chart.js';
import { formatSplitList } from '../sampling/longtail.js';
import { RunInterrupted, type ProgressEvent, type StageContext } from './context.js';
import { loadRunData } from './data.js';
import { RUN_FORMAT, RUN_FORMAT_VERSION, RunDir, stageOfStep, type ResultRow, type RunStateFile } from './run-state.js';
import { btm, evaluateStep, fc, lift, posttrain, pretrain, restoreStep, ttaStep } from './stages.js';
import { defaultTtaResize } from '../tta.js';
import { applyPerformance } from './trainer.js';
import { ProcessGroup } from '../distributed/process-group.js';
import { parseDistSettings, type DistSettings, type DistSettingsInput } from '../distributed/settings.js';
import { perRankBatch } from '../distributed/shard.js';

export interface RunOptions {
  /** Stops the run after the current chunk of steps; the run directory stays resumable. */
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Continue the run in <runDir>/<name> from where it stopped (the config must match the saved one; see runPipeline). */
  resume?: boolean;
  /**
   * Run as one rank of a distributed run (c10d: Gloo on CPU, NCCL on CUDA): data-parallel pre-training,
   * fc and post-training, BTM members fanned out over the ranks. Every rank calls runPipeline with the
   * same config; rank 0 serves the rendezvous at host:port and writes the run directory, which every
   * rank must see (one machine, or a shared file system). See distFromEnv for torchrun's variables.
   */
  distributed?: DistSettingsInput;
}

export interface RunResult {
  status: 'complete' | 'interrupted';
  dir: string;
  rows: ResultRow[];
  /** Checkpoint of the final model (absent when interrupted). */
  checkpoint?: string;
  timings: Record<string, number>;
}

const STAGE_RUNNERS: Record<StageName, (ctx: StageContext) => Promise<void>> = { pretrain, fc, lift, btm, posttrain };

/** The checkpoint a finished stage leaves behind. */
function stageOutput(run: RunDir, stage: StageName): string {
  return stage === 'btm' ? run.path('btm', 'merged.safetensors') : run.path(`${stage}.safetensors`);
}

function stageDone(run: RunDir, stage: StageName): boolean {
  return run.isFinished(stage === 'btm' ? 'btm-merge' : stage);
}

/**
 * Runs a pipeline from a config (validated here; see ConfigSchema and presetConfig).
 *
 * Everything that can be checked is checked before the run directory is written: the config, where
 * the directory goes, the device, the data (readable, non-empty split and test set, finite
 * normalisation) and model.init (readable, same architecture, classes and image shape as the data).
 * A run that fails there leaves nothing behind.
 *
 * With `resume`, the saved config (validated with the same schema) must equal the given one, except
 * for the settings of stages that have not started yet (no finished step, no partial checkpoint),
 * which may change: anything else is refused with the list of differing keys.
 */
export async function runPipeline(input: ConfigInput | Config, opts: RunOptions = {}): Promise<RunResult> {
  const parsed = parseConfig(input);
  const dist = opts.distributed ? parseDistSettings(opts.distributed) : undefined;
  const leader = !dist || dist.rank === 0;
  const dir = join(parsed.runDir, parsed.name);
  let config = parsed;
  let resumed: { state: RunStateFile; changed: string[] } | undefined;
  if (opts.resume) {
    const saved = RunDir.readExisting(dir);
    const changed = checkResumeChanges(dir, saved.config, parsed, saved.state);
    config = changed.length ? parsed : saved.config;
    resumed = { state: saved.state, changed };
  } else if (leader) {
    RunDir.checkNew(dir);
  }
  if (dist) checkDistributed(config, dist);
  // each rank of a distributed CUDA run on the GPU of its local rank
  const device = (dist && config.model.device === 'cuda' ? `cuda:${dist.localRank}` : config.model.device) as Device;
  checkDevice(device);
  const data = await loadRunData(config);
  const meta: ModelMeta = {
    arch: config.model.arch,
    numClasses: data.train.numClasses,
    inChannels: data.train.channels,
    imageSize: data.train.height,
    normalize: data.normalize,
    classNames: data.train.classNames,
  };
  if (config.eval.tta !== 'none') {
    const resize = config.eval.ttaResize ?? defaultTtaResize(meta.imageSize);
    if (resize < meta.imageSize) throw new ConfigError(`eval.ttaResize: the images are upscaled before the five crops of ${meta.imageSize}x${meta.imageSize}: it must be >= ${meta.imageSize}, got ${resize}`);
  }
  const init = config.model.init ? await checkInit(config.model.init, config.model.initFormat, meta, config.seed) : undefined;

  // every check passed on every rank (they run the same checks on the same config): join the group
  const group = dist ? await joinGroup(dist, device) : undefined;
  let run: RunDir;
  try {
    if (leader) {
      if (resumed) {
        run = RunDir.resumed(dir, resumed.state);
        if (resumed.changed.length) await writeJsonAtomic(run.path('config.json'), config);
      } else {
        run = await RunDir.create(dir, config);
      }
    }
    if (group) {
      await group.barrier(); // rank 0 has created (or re-read) the run directory
      if (!leader) run = RunDir.follower(dir, resumed?.state ?? RunDir.readExisting(dir).state);
      await checkSameState(group, run!, dir, data);
    }
  } catch (e) {
    group?.dispose();
    throw e;
  }
  run = run!;
  const emit = opts.onProgress ?? (() => {});
  if (config.threads) setNumThreads(config.threads);

  const stageChanges = resumed?.changed.filter((k) => k !== 'runDir') ?? [];
  if (stageChanges.length) emit({ type: 'log', message: `--resume: settings of stages not started yet changed: ${stageChanges.join(', ')}` });
  const splitFile = run.path('split.txt');
  // a multi-label run has no split file: its training set (generated from data.mosaic's seed, or the training list) is used whole
  if (leader && !data.multiLabel && !existsSync(splitFile)) {
    await writeFileAtomic(splitFile, formatSplitList(data.split, data.train.labels, {
      numClasses: data.train.numClasses, seed: config.data.splitSeed, profile: config.data.profile, imbalanceFactor: config.data.imbalanceFactor,
    }));
  }
  const valFile = run.path('val.txt');
  if (leader && data.val.length > 0 && !existsSync(valFile)) {
    await writeFileAtomic(valFile, formatSplitList(data.val, data.train.labels, {
      numClasses: data.train.numClasses, seed: config.data.splitSeed, profile: config.data.profile, imbalanceFactor: 1,
    }));
  }
  const ml = data.multiLabel;
  const trainSet = ml ? new Dataset({ ...data.train, targets: ml.trainTargets }, device) : Dataset.fromImageSet(data.train, device);
  const testSet = ml ? new Dataset({ ...data.test, targets: ml.testTargets }, device) : Dataset.fromImageSet(data.test, device);
  const model = new Model({ arch: meta.arch, numClasses: meta.numClasses, inChannels: meta.inChannels, imageSize: meta.imageSize, device, seed: config.seed });
  applyPerformance(model, config);
  const ctx: StageContext = {
    config, run, data, trainSet, testSet, model, meta, signal: opts.signal, emit,
    dist: group && { group, rank: group.rank, worldSize: group.worldSize, syncBatchNorm: dist!.syncBatchNorm },
  };
  emit({ type: 'log', message: describeRun(config, data.split.length, data.counts) +
    (data.val.length ? ` | validation: ${data.val.length} held-out training images (${config.data.valPerClass} per class)` : '') });

  const stages = config.pipeline.filter((s) => !(s === 'pretrain' && config.model.init));
  // model.init may be a plain torchvision / timm state dict (converted by checkInit), not a btm-node checkpoint
  const restore = (file: string) => (init && file === init.file ? loadInit(ctx, init) : restoreStep(ctx, file));
  try {
    // `last`: the checkpoint the next stage starts from; `loaded`: whether ctx.model already holds it
    let last: string | undefined = config.model.init;
    let loaded = !last;
    if (init && !run.isFinished('init')) {
      await restore(init.file);
      loaded = true;
      if (leader) await evaluateStep(ctx, 'init', 'init', `initial model (${init.file})`);
      await run.finish('init');
    }
    for (const stage of stages) {
      if (stageDone(run, stage)) {
        last = stageOutput(run, stage);
        loaded = false;
        continue;
      }
      if (last && !loaded) await restore(last);
      await STAGE_RUNNERS[stage](ctx);
      last = stageOutput(run, stage);
      loaded = true;
    }
    if (config.eval.tta !== 'none' && !run.isFinished('tta')) {
      if (last && !loaded) await restore(last);
      if (leader) await ttaStep(ctx);
      await run.finish('tta');
    }
    if (leader) {
      await writeCharts(ctx);
      await writeResults(ctx, 'complete');
    }
    return { status: 'complete', dir, rows: run.state.rows, checkpoint: last, timings: run.state.timings };
  } catch (e) {
    if (!(e instanceof RunInterrupted)) throw e;
    await run.save();
    if (leader) await writeResults(ctx, 'interrupted');
    emit({ type: 'log', message: `${e.message}; continue with --resume (run directory ${dir})` });
    return { status: 'interrupted', dir, rows: run.state.rows, timings: run.state.timings };
  } finally {
    model.dispose();
    trainSet.dispose();
    testSet.dispose();
    group?.dispose();
  }
}

/** What a distributed run needs of the config: global batches the world size divides. */
function checkDistributed(config: Config, dist: DistSettings): void {
  for (const stage of ['pretrain', 'fc', 'posttrain'] as const) {
    if (!config.pipeline.includes(stage)) continue;
    try {
      perRankBatch(config[stage].batchSize, dist.worldSize, `${stage}.batchSize`);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  }
}

async function joinGroup(dist: DistSettings, device: string): Promise<ProcessGroup> {
  const backend = dist.backend ?? (device === 'cpu' ? 'gloo' : 'nccl');
  try {
    return await ProcessGroup.init({
      rank: dist.rank, worldSize: dist.worldSize, host: dist.host, port: dist.port, backend,
      timeoutMs: Math.round(dist.timeoutSeconds * 1000), device: backend === 'nccl' ? device : 'cpu',
    });
  } catch (e) {
    throw new Error(`distributed run: ${(e as Error).message}`);
  }
}

/**
 * Every rank must resume from the same point (rank 0's finished steps and partial epoch against ours)
 * and hold the same training data: a global batch indexes the whole training set, and a rank gathers
 * mixup partners from any part of it.
 */
async function checkSameState(group: ProcessGroup, run: RunDir, dir: string, data: { train: { labels: Int32Array }; split: Int32Array }): Promise<void> {
  let digest = 0;
  for (let i = 0; i < data.split.length; i++) digest = (Math.imul(digest, 31) + data.split[i] * 7 + data.train.labels[data.split[i]]) % 8388593;
  const mine = Float32Array.of(run.state.finished.length, run.state.partial?.epoch ?? -1, data.train.labels.length, data.split.length, digest);
  const lead = await group.broadcastValues(mine, 0);
  if (lead[0] !== mine[0] || lead[1] !== mine[1]) {
    throw new Error(`distributed run: rank ${group.rank} sees another run state in ${dir} than rank 0 ` +
      `(${mine[0]} finished steps, partial epoch ${mine[1]}; rank 0: ${lead[0]}, ${lead[1]}): every rank must see the same run directory (a shared file system)`);
  }
  if (lead[2] !== mine[2] || lead[3] !== mine[3] || lead[4] !== mine[4]) {
    throw new Error(`distributed run: rank ${group.rank} loaded another training set than rank 0 (${mine[2]} images, ` +
      `${mine[3]} in the long-tailed split, digest ${mine[4]}; rank 0: ${lead[2]}, ${lead[3]}, ${lead[4]}): every rank must hold the ` +
      'whole, same training set (each trains its part of global batches drawn from all of it)');
  }
}

/** Keys that may differ on --resume: those of pipeline stages with no finished step and no partial checkpoint. */
function checkResumeChanges(dir: string, saved: Config, given: Config, state: RunStateFile): string[] {
  const diff = configDiff(saved, given);
  if (diff.length === 0) return [];
  const started = new Set([...state.finished, ...(state.partial ? [state.partial.step] : [])].map(stageOfStep));
  const safe = (key: string) => {
    const section = key.split('.')[0];
    if (key === 'runDir') return true; // where the directory is, not what runs in it
    return (STAGES as readonly string[]).includes(section) && !started.has(section);
  };
  const refused = diff.filter((k) => !safe(k));
  if (refused.length) {
    throw new ConfigError(`--resume: the settings differ from those ${dir} was started with, in: ${refused.join(', ')}. ` +
      `Pass the same flags as the first run (or --config ${join(dir, 'config.json')}); only settings of stages that have not started ` +
      `yet may change${started.size ? ` (started: ${[...started].join(', ')})` : ''}.`);
  }
  return diff;
}

/** A CUDA device must exist before anything is written. */
function checkDevice(device: string): void {
  if (device === 'cpu') return;
  const n = cudaAvailable() ? deviceCount() : 0;
  const index = device === 'cuda' ? 0 : Number(device.slice(5));
  if (index >= n) {
    throw new ConfigError(`model.device: '${device}' requested, but ${n === 0 ? 'no CUDA device is available (this libtorch has no CUDA or sees no GPU)' : `only ${n} CUDA device(s) are visible`}; use --model.device cpu`);
  }
}

/** model.init, checked: a btm-node checkpoint (loaded by restoreStep), or a plain state dict converted to the run's model. */
interface InitCheckpoint {
  file: string;
  plain?: PlainImport;
}

/**
 * model.init must be a btm-node checkpoint of the configured architecture, for data of this shape, or
 * (model.initFormat auto / torchvision / timm) a plain torchvision- or timm-named state dict that
 * matches the run's model after the name map (src/checkpoint-import.ts); its head may be for another
 * number of classes (the model's own head is kept then).
 */
async function checkInit(file: string, format: InitFormat, want: ModelMeta, seed: number): Promise<InitCheckpoint> {
  try {
    const read = await readInitFile(file, format);
    if (read.kind === 'plain') {
      // the run's model as it will be created (same seed): the layout to match and the head kept when the file's differs
      const model = new Model({ arch: want.arch, numClasses: want.numClasses, inChannels: want.inChannels, imageSize: want.imageSize, device: 'cpu', seed });
      let template;
      try {
        template = model.stateDict();
      } finally {
        model.dispose();
      }
      return { file, plain: importPlainState(read, template, want.arch, 'keep-model') };
    }
    const meta = read.checkpoint.meta;
    const diffs: string[] = [];
    for (const k of ['arch', 'numClasses', 'inChannels', 'imageSize'] as const) {
      if (meta[k] !== want[k]) diffs.push(`${k} ${String(meta[k])} (the run needs ${String(want[k])})`);
    }
    if (diffs.length) throw new Error(`${file} does not match this run: ${diffs.join(', ')}`);
    return { file };
  } catch (e) {
    throw new ConfigError(`model.init: ${(e as Error).message}`);
  }
}

/** Loads model.init into ctx.model: a converted plain state as checked, or a btm-node checkpoint. */
async function loadInit(ctx: StageContext, init: InitCheckpoint): Promise<void> {
  if (!init.plain) return restoreStep(ctx, init.file);
  ctx.model.loadStateDict(init.plain.state);
  ctx.emit({ type: 'log', message: `model.init: ${init.file} read as a ${init.plain.layout}-named state dict` +
    (init.plain.notes.length ? `; ${init.plain.notes.join('; ')}` : '') });
}

function describeRun(c: Config, n: number, counts: number[]): string {
  return `run ${c.name}: ${c.pipeline.join(' -> ')} | ${c.data.dataset}, ${n} training images, ` +
    `${counts.length} classes (${Math.max(...counts)} .. ${Math.min(...counts)} per class) | ${c.model.arch} on ${c.model.device}, ${getNumThreads()} threads`;
}

/** results.json: config, split, machine, every row, timings; rewritten atomically. */
async function writeResults(ctx: StageContext, status: string): Promise<void> {
  const { config, data, run } = ctx;
  await writeJsonAtomic(run.path('results.json'), {
    format: RUN_FORMAT,
    version: RUN_FORMAT_VERSION,
    status,
    config,
    split: data.multiLabel
      ? { file: null, counts: data.counts, size: data.split.length, seed: config.data.dataset === 'mosaic' ? config.data.mosaic.seed : null, multiLabel: true }
      : {
          file: 'split.txt', counts: data.counts, size: data.split.length, seed: config.data.splitSeed,
          ...(data.val.length ? { val: { file: 'val.txt', perClass: config.data.valPerClass, size: data.val.length } } : {}),
        },
    seeds: { run: config.seed, split: config.data.splitSeed },
    classNames: data.train.classNames,
    machine: { ...buildInfo(), threads: getNumThreads(), node: process.version, device: config.model.device },
    rows: run.state.rows,
    merges: run.state.merges ?? {},
    timings: run.state.timings,
  });
}

/** Per-class recall (multi-label: AP) before / after (the first and last rows, and the merged model when present). */
async function writeCharts(ctx: StageContext): Promise<void> {
  const rows = ctx.run.state.rows;
  if (rows.length === 0) return;
  const picked = [rows[0], rows.find((r) => r.step === 'btm-merge'), rows[rows.length - 1]].filter(
    (r, i, all): r is ResultRow => r !== undefined && all.indexOf(r) === i,
  );
  const opts = {
    title: `Per-class ${ctx.data.multiLabel ? 'AP' : 'recall'}, ${ctx.config.name}`,
    series: picked.map((r) => ({ label: r.label, recall: r.perClassRecall })),
    classNames: ctx.data.train.classNames,
    trainCounts: ctx.data.counts,
  };
  // a multi-label run charts per-class AP: ap.svg / ap.png
  const name = ctx.data.multiLabel ? 'ap' : 'recall';
  await writeFile(ctx.run.path(`${name}.svg`), recallChartSvg({ ...opts, axisLabel: ctx.data.multiLabel ? 'AP' : 'Recall' }));
  await writeFile(ctx.run.path(`${name}.png`), recallChartPng({ ...opts, axisLabel: ctx.data.multiLabel ? 'AP' : 'Recall' }));
}

/** Reads the final checkpoint's metadata; used by `btm info`. */
export async function checkpointInfo(file: string) {
  const { state, meta, metadata } = await readCheckpoint(file);
  const params = state.filter((e) => e.dtype === 'float32' && !/running_(mean|var)$/.test(e.name)).reduce((s, e) => s + e.data.length, 0);
  return { meta, metadata, tensors: state.length, parameters: params };
}
