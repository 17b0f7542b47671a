/**
 * A run directory: config.json, split.txt, per-step checkpoints, state.json (what has finished, for
 * --resume) and results.json (every evaluation row, timings). Every file is written atomically.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../atomic-file.js';
import type { Config } from '../config.js';
import type { Summary } from '../metrics.js';

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
}

export interface RunStateFile {
  version: 1;
  finished: string[];
  /** A step interrupted after a finished epoch: its training-state checkpoint. */
  partial?: { step: string; epoch: number; file: string };
  /** Merge-validation scores of BTM fine-tunes (for adaptive / greedy merges). */
  scores: Record<string, { harmonicMean: number; geometricMean: number }>;
  rows: ResultRow[];
  /** Seconds per step (training and evaluation). */
  timings: Record<string, number>;
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

export class RunDir {
  private constructor(
    readonly dir: string,
    readonly state: RunStateFile,
  ) {}

  /**
   * A new run directory (refuses to reuse one that holds a run: never overwrite checkpoints), or,
   * with resume, the existing one and its state. Returns the config to use: on resume, the saved one.
   */
  static async open(dir: string, config: Config, resume: boolean): Promise<{ run: RunDir; config: Config }> {
    const configFile = join(dir, 'config.json');
    const stateFile = join(dir, 'state.json');
    if (resume) {
      if (!existsSync(stateFile)) throw new Error(`--resume: ${dir} holds no run to resume (no state.json)`);
      const saved = JSON.parse(readFileSync(configFile, 'utf8')) as Config;
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as RunStateFile;
      return { run: new RunDir(dir, state), config: saved };
    }
    if (existsSync(stateFile)) {
      throw new Error(`${dir} already holds a run: pass --resume to continue it, or choose another --name`);
    }
    mkdirSync(join(dir, 'btm'), { recursive: true });
    await writeJsonAtomic(configFile, config);
    const run = new RunDir(dir, { version: 1, finished: [], scores: {}, rows: [], timings: {} });
    await run.save();
    return { run, config };
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
  }

  save(): Promise<void> {
    return writeJsonAtomic(join(this.dir, 'state.json'), this.state);
  }
}
