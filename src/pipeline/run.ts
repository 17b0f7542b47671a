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
import { parseConfig, type Config, type ConfigInput, type StageName } from '../config.js';
import { Dataset } from '../dataset.js';
import { buildInfo, getNumThreads, setNumThreads, type Device } from '../device.js';
import { Model } from '../model.js';
import { recallChartPng, recallChartSvg } from '../report/chart.js';
import { formatSplitList } from '../sampling/longtail.js';
import { RunInterrupted, type ProgressEvent, type StageContext } from './context.js';
import { loadRunData } from './data.js';
import { RunDir, type ResultRow } from './run-state.js';
import { btm, evaluateStep, fc, posttrain, pretrain, restoreStep } from './stages.js';

export interface RunOptions {
  /** Stops the run after the current chunk of steps; the run directory stays resumable. */
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Continue the run in <runDir>/<name> from where it stopped (its saved config is used). */
  resume?: boolean;
}

export interface RunResult {
  status: 'complete' | 'interrupted';
  dir: string;
  rows: ResultRow[];
  /** Checkpoint of the final model (absent when interrupted). */
  checkpoint?: string;
  timings: Record<string, number>;
}

const STAGE_RUNNERS: Record<StageName, (ctx: StageContext) => Promise<void>> = { pretrain, fc, btm, posttrain };

/** The checkpoint a finished stage leaves behind. */
function stageOutput(run: RunDir, stage: StageName): string {
  return stage === 'btm' ? run.path('btm', 'merged.safetensors') : run.path(`${stage}.safetensors`);
}

function stageDone(run: RunDir, stage: StageName): boolean {
  return run.isFinished(stage === 'btm' ? 'btm-merge' : stage);
}

/** Runs a pipeline from a config (validated here; see ConfigSchema and presetConfig). */
export async function runPipeline(input: ConfigInput | Config, opts: RunOptions = {}): Promise<RunResult> {
  const parsed = parseConfig(input);
  const dir = join(parsed.runDir, parsed.name);
  const { run, config } = await RunDir.open(dir, parsed, opts.resume ?? false);
  const emit = opts.onProgress ?? (() => {});
  if (config.threads) setNumThreads(config.threads);

  const data = await loadRunData(config);
  const splitFile = run.path('split.txt');
  if (!existsSync(splitFile)) {
    await writeFileAtomic(splitFile, formatSplitList(data.split, data.train.labels, {
      numClasses: data.train.numClasses, seed: config.data.splitSeed, profile: config.data.profile, imbalanceFactor: config.data.imbalanceFactor,
    }));
  }
  const meta: ModelMeta = {
    arch: config.model.arch,
    numClasses: data.train.numClasses,
    inChannels: data.train.channels,
    imageSize: data.train.height,
    normalize: data.normalize,
    classNames: data.train.classNames,
  };
  const device = config.model.device as Device;
  const trainSet = Dataset.fromImageSet(data.train, device);
  const testSet = Dataset.fromImageSet(data.test, device);
  const model = new Model({ arch: meta.arch, numClasses: meta.numClasses, inChannels: meta.inChannels, device, seed: config.seed });
  if (device !== 'cpu') model.setPerformance({ amp: config.model.amp, channelsLast: config.model.channelsLast });
  const ctx: StageContext = { config, run, data, trainSet, testSet, model, meta, signal: opts.signal, emit };
  emit({ type: 'log', message: describeRun(config, data.split.length, data.counts) });

  const stages = config.pipeline.filter((s) => !(s === 'pretrain' && config.model.init));
  try {
    if (config.model.init) {
      if (!run.isFinished('init')) {
        await restoreStep(ctx, config.model.init);
        await evaluateStep(ctx, 'init', 'init', `initial model (${config.model.init})`);
        await run.finish('init');
      }
    }
    // `last`: the checkpoint the next stage starts from; `loaded`: whether ctx.model already holds it
    let last: string | undefined = config.model.init;
    let loaded = true;
    for (const stage of stages) {
      if (stageDone(run, stage)) {
        last = stageOutput(run, stage);
        loaded = false;
        continue;
      }
      if (last && !loaded) await restoreStep(ctx, last);
      await STAGE_RUNNERS[stage](ctx);
      last = stageOutput(run, stage);
      loaded = true;
    }
    await writeCharts(ctx);
    await writeResults(ctx, 'complete');
    return { status: 'complete', dir, rows: run.state.rows, checkpoint: last, timings: run.state.timings };
  } catch (e) {
    if (!(e instanceof RunInterrupted)) throw e;
    await run.save();
    await writeResults(ctx, 'interrupted');
    emit({ type: 'log', message: `${e.message}; continue with --resume (run directory ${dir})` });
    return { status: 'interrupted', dir, rows: run.state.rows, timings: run.state.timings };
  } finally {
    model.dispose();
    trainSet.dispose();
    testSet.dispose();
  }
}

function describeRun(c: Config, n: number, counts: number[]): string {
  return `run ${c.name}: ${c.pipeline.join(' -> ')} | ${c.data.dataset}, ${n} training images, ` +
    `${counts.length} classes (${Math.max(...counts)} .. ${Math.min(...counts)} per class) | ${c.model.arch} on ${c.model.device}, ${getNumThreads()} threads`;
}

/** results.json: config, split, machine, every row, timings; rewritten atomically. */
async function writeResults(ctx: StageContext, status: string): Promise<void> {
  const { config, data, run } = ctx;
  await writeJsonAtomic(run.path('results.json'), {
    status,
    config,
    split: { file: 'split.txt', counts: data.counts, size: data.split.length, seed: config.data.splitSeed },
    seeds: { run: config.seed, split: config.data.splitSeed },
    classNames: data.train.classNames,
    machine: { ...buildInfo(), threads: getNumThreads(), node: process.version, device: config.model.device },
    rows: run.state.rows,
    timings: run.state.timings,
  });
}

/** Per-class recall before / after (the first and last rows, and the merged model when present). */
async function writeCharts(ctx: StageContext): Promise<void> {
  const rows = ctx.run.state.rows;
  if (rows.length === 0) return;
  const picked = [rows[0], rows.find((r) => r.step === 'btm-merge'), rows[rows.length - 1]].filter(
    (r, i, all): r is ResultRow => r !== undefined && all.indexOf(r) === i,
  );
  const opts = {
    title: `Per-class recall, ${ctx.config.name}`,
    series: picked.map((r) => ({ label: r.label, recall: r.perClassRecall })),
    classNames: ctx.data.train.classNames,
    trainCounts: ctx.data.counts,
  };
  await writeFile(ctx.run.path('recall.svg'), recallChartSvg(opts));
  await writeFile(ctx.run.path('recall.png'), recallChartPng(opts));
}

/** Reads the final checkpoint's metadata; used by `btm info`. */
export async function checkpointInfo(file: string) {
  const { state, meta, metadata } = await readCheckpoint(file);
  const params = state.filter((e) => e.dtype === 'float32' && !/running_(mean|var)$/.test(e.name)).reduce((s, e) => s + e.data.length, 0);
  return { meta, metadata, tensors: state.length, parameters: params };
}
