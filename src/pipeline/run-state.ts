/**
 * A run directory: config.json, split.txt, per-step checkpoints, state.json (what has finished, for
 * --resume), results.json (every evaluation row, timings) and metrics.jsonl (a record per epoch and per
 * evaluation). Every file but metrics.jsonl (appended a line at a time) is written atomically.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeJsonAtomic } from '../atomic-file.js';
import { parseConfig, type Config } from '../config.js';
import type { Summary } from '../metrics.js';
import type { MultiLabelSummary } from '../metrics-multilabel.js';

/** The Summary fields a result row carries as they are. */
type SummaryFields = Pick<Summary,
  'accuracy' | 'arithmeticMean' | 'geometricMean' | 'harmonicMean' | 'lowestRecall' | 'lowestClass' | 'zeroRecallClasses' | 'perClassRecall'>;

/** One evaluation on the test set: after a stage, after each BTM fine-tune, after the merge. */
export interface ResultRow extends SummaryFields {
  step: string;
  stage: string;
  label: string;
  /** Mean recall of the many / medium / few groups (null for an empty group). */
  many: number | null;
  medium: number | null;
  few: number | null;
  /** Training time of the step, seconds. */
  trainSeconds: number;
  /**
   * 'ap' for a multi-label run: the per-class metric is average precision, not recall. Then
   * perClassRecall holds the per-class APs, arithmeticMean the mAP, geometricMean / harmonicMean /
   * lowestRecall / lowestClass those of the APs, many / medium / few the groups' mAP, zeroRecallClasses
   * the classes with AP 0, and accuracy the top-1 hit rate (the top-scored class is a label). Absent: recall.
   */
  metric?: 'ap';
  /** The same metrics on the validation split (data.valPerClass > 0), per-class recall left out. */
  val?: ValidationMetrics;
}

/** A row's metrics on the validation split. */
export type ValidationMetrics = Omit<SummaryFields, 'perClassRecall'> & { many: number | null; medium: number | null; few: number | null };

export function validationFromSummary(s: Summary): ValidationMetrics {
  const { perClassRecall: _, ...rest } = rowFromSummary('', '', '', s, 0);
  return {
    accuracy: rest.accuracy, arithmeticMean: rest.arithmeticMean, geometricMean: rest.geometricMean, harmonicMean: rest.harmonicMean,
    lowestRecall: rest.lowestRecall, lowestClass: rest.lowestClass, zeroRecallClasses: rest.zeroRecallClasses,
    many: rest.many, medium: rest.medium, few: rest.few,
  };
}

/** The layout of state.json; bumped when it (or the run directory) changes in a way an older reader would misread. */
export const RUN_FORMAT = 'btm-node-run';
export const RUN_FORMAT_VERSION = 2;

export interface RunStateFile {
  format: typeof RUN_FORMAT;
  version: typeof RUN_FORMAT_VERSION;
  finished: string[];
  /** A step interrupted after a finished epoch: its training-state checkpoint. */
  partial?: { step: string; epoch: number; file: string };
  /** Merge-validation scores of BTM fine-tunes (for adaptive / greedy merges). */
  scores: Record<string, { harmonicMean: number; geometricMean: number }>;
  /** What each finished merge used: the strategy, the members and their weights (normalised to sum 1). */
  merges?: Record<string, { strategy: string; members: number[]; weights: number[] }>;
  rows: ResultRow[];
  /** Seconds per step (training and evaluation). */
  timings: Record<string, number>;
}

/** One line of metrics.jsonl: a finished training epoch, or an evaluation on the test set. */
export type MetricsRecord =
  | {
      kind: 'epoch'; time: string; stage: string; step: string; epoch: number; epochs: number;
      /** Learning rate at the epoch's first step. */
      lr: number;
      /** What the loss was (from the options the trainer passed): 'ce', 'gml', 'logit-adjust', 'las'. */
      loss: string;
      trainLoss: number; trainAccuracy: number; imagesPerSec: number; seconds: number;
    }
  | ({ kind: 'eval'; time: string } & Omit<ResultRow, 'perClassRecall'>);

/** The stage a step belongs to: 'btm-3' and 'btm-merge' are BTM's, every other step is its stage's name. */
export function stageOfStep(step: string): string {
  return /^btm-/.test(step) ? 'btm' : step;
}

export function rowFromSummary(step: string, stage: string, label: string, s: Summary, trainSeconds: number): ResultRow {
  return {
    step, stage, label,
    accuracy: s.accuracy,
    arithmeticMean: s.arithmeticMean,
    geometricMean: s.geometricMean,
    harmonicMean: s.harmonicMean,
    lowestRecall: s.lowestRecall,
    lowestClass: s.lowestClass,
    zeroRecallClasses: s.zeroRecallClasses,
    many: s.many?.recall ?? null,
    medium: s.medium?.recall ?? null,
    few: s.few?.recall ?? null,
    perClassRecall: s.perClassRecall,
    trainSeconds,
  };
}

/** A multi-label evaluation as a result row (see ResultRow.metric). */
export function rowFromMultiLabel(step: string, stage: string, label: string, s: MultiLabelSummary, topHit: number, trainSeconds: number): ResultRow {
  return {
    step, stage, label, metric: 'ap',
    accuracy: topHit,
    arithmeticMean: s.mAP,
    geometricMean: s.geometricMean,
    harmonicMean: s.harmonicMean,
    lowestRecall: s.lowestAP,
    lowestClass: s.lowestClass,
    zeroRecallClasses: s.perClassAP.filter((a) => a === 0).length,
    many: s.many?.mAP ?? null,
    medium: s.medium?.mAP ?? null,
    few: s.few?.mAP ?? null,
    perClassRecall: s.perClassAP,
    trainSeconds,
  };
}

export class RunDir {
  private constructor(
    readonly dir: string,
    readonly state: RunStateFile,
    /** False on the ranks of a distributed run other than rank 0: they keep the state in memory only. */
    readonly writer = true,
  ) {}

  /**
   * Checks, writing nothing, that a new run can be created at `dir`: it holds no run, and the nearest
   * existing ancestor is a writable directory. Throws an Error naming the path otherwise.
   */
  static checkNew(dir: string): void {
    if (existsSync(join(dir, 'state.json'))) {
      throw new Error(`${dir} already holds a run: pass --resume to continue it, or choose another --name`);
    }
    let p = resolve(dir);
    for (;;) {
      let st;
      try {
        st = statSync(p);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new Error(`cannot create the run directory ${dir}: ${p}: ${(e as Error).message}`);
        const parent = dirname(p);
        if (parent === p) throw new Error(`cannot create the run directory ${dir}: no existing ancestor`);
        p = parent;
        continue;
      }
      if (!st.isDirectory()) throw new Error(`cannot create the run directory ${dir}: ${p} is not a directory`);
      try {
        accessSync(p, constants.W_OK | constants.X_OK);
      } catch {
        throw new Error(`cannot create the run directory ${dir}: ${p} is not writable`);
      }
      return;
    }
  }

  /**
   * Creates the run directory one level at a time (no recursive mkdir: on some special file systems it
   * can loop), then writes config.json and an empty state.json. Call checkNew first.
   */
  static async create(dir: string, config: Config): Promise<RunDir> {
    const missing: string[] = [];
    for (let p = resolve(dir); !existsSync(p); p = dirname(p)) missing.unshift(p);
    for (const p of [...missing, resolve(dir, 'btm')]) {
      try {
        mkdirSync(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(p).isDirectory()) continue;
        throw new Error(`cannot create the run directory ${dir}: ${(e as Error).message}`);
      }
    }
    await writeJsonAtomic(join(dir, 'config.json'), config);
    const run = new RunDir(dir, { format: RUN_FORMAT, version: RUN_FORMAT_VERSION, finished: [], scores: {}, rows: [], timings: {} });
    await run.save();
    return run;
  }

  /**
   * Reads a run directory to resume: state.json of this format version, and config.json validated with
   * the same schema as a fresh run. Throws an Error naming the file on any problem.
   */
  static readExisting(dir: string): { state: RunStateFile; config: Config } {
    const stateFile = join(dir, 'state.json');
    const configFile = join(dir, 'config.json');
    if (!existsSync(stateFile)) throw new Error(`--resume: ${dir} holds no run to resume (no state.json)`);
    const state = readJson(stateFile) as Partial<RunStateFile> & { version?: unknown };
    if (typeof state !== 'object' || state === null || Array.isArray(state)) throw new Error(`${stateFile}: not a btm-node run state (expected a JSON object)`);
    if (state.format !== RUN_FORMAT || state.version !== RUN_FORMAT_VERSION) {
      const found = state.format === RUN_FORMAT || state.version !== undefined ? `run format version ${String(state.version)}` : 'no run format';
      throw new Error(`${dir}: written by another btm-node version (${found}; this one reads ${RUN_FORMAT} version ${RUN_FORMAT_VERSION}): ` +
        'it cannot be resumed; start a new run (another --name)');
    }
    if (!Array.isArray(state.finished) || !Array.isArray(state.rows) || typeof state.scores !== 'object' || typeof state.timings !== 'object') {
      throw new Error(`${stateFile}: damaged run state (finished, rows, scores or timings missing)`);
    }
    if (!existsSync(configFile)) throw new Error(`--resume: ${dir} has no config.json`);
    const config = parseConfig(readJson(configFile), configFile);
    return { state: state as RunStateFile, config };
  }

  /** The RunDir of a run read by readExisting. */
  static resumed(dir: string, state: RunStateFile): RunDir {
    return new RunDir(dir, state);
  }

  /**
   * A rank other than 0 of a distributed run: the same state, kept in memory (rank 0 writes the
   * files); its save() and logMetrics() write nothing.
   */
  static follower(dir: string, state: RunStateFile): RunDir {
    return new RunDir(dir, state, false);
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  isFinished(step: string): boolean {
    return this.state.finished.includes(step);
  }

  async finish(step: string): Promise<void> {
    if (!this.isFinished(step)) this.state.finished.push(step);
    if (this.state.partial?.step === step) delete this.state.partial;
    await this.save();
  }

  addTime(step: string, seconds: number): void {
    this.state.timings[step] = (this.state.timings[step] ?? 0) + seconds;
  }

  async addRow(row: ResultRow): Promise<void> {
    this.state.rows = this.state.rows.filter((r) => r.step !== row.step);
    this.state.rows.push(row);
    await this.save();
    const { perClassRecall: _, ...rest } = row;
    await this.logMetrics({ kind: 'eval', time: new Date().toISOString(), ...rest });
  }

  /**
   * Appends one record to metrics.jsonl (a line per write; a line cut by a crash is skipped by
   * readMetrics, and an epoch run again after --resume replaces its earlier record there).
   */
  logMetrics(record: MetricsRecord): Promise<void> {
    if (!this.writer) return Promise.resolve();
    return appendFile(join(this.dir, METRICS_FILE), JSON.stringify(record) + '\n');
  }

  save(): Promise<void> {
    if (!this.writer) return Promise.resolve();
    return writeJsonAtomic(join(this.dir, 'state.json'), this.state);
  }
}

export const METRICS_FILE = 'metrics.jsonl';

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The records of <dir>/metrics.jsonl in order, the last one kept where an epoch or an evaluation was
 * recorded twice (a resumed run repeats the epochs after its last checkpoint); lines that do not parse
 * (a line cut by a crash) are skipped and counted.
 */
export function readMetrics(dir: string): { records: MetricsRecord[]; skipped: number } {
  const file = join(dir, METRICS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const byKey = new Map<string, MetricsRecord>();
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r: MetricsRecord;
    try {
      r = JSON.parse(line) as MetricsRecord;
    } catch {
      skipped++;
      continue;
    }
    if (typeof r !== 'object' || r === null || (r.kind !== 'epoch' && r.kind !== 'eval')) {
      skipped++;
      continue;
    }
    const key = r.kind === 'epoch' ? `epoch\u0000${r.step}\u0000${r.epoch}` : `eval\u0000${r.step}`;
    byKey.delete(key); // re-insert: the order is that of the last write
    byKey.set(key, r);
  }
  return { records: [...byKey.values()], skipped };
}
