/**
 * Aggregates the results of several runs (e.g. one method over 3 seeds): rows are grouped by method
 * (the run name without its `-s<seed>` suffix) and row label, with mean and spread of each metric.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricsRecord, ResultRow } from '../pipeline/run-state.js';
import { formatTable } from './table.js';

export const AGGREGATED_METRICS = ['harmonicMean', 'geometricMean', 'lowestRecall', 'accuracy', 'arithmeticMean'] as const;
type Metric = (typeof AGGREGATED_METRICS)[number];
/** The recall of the many / medium / few groups: null where a run has no such group. */
export const GROUP_METRICS = ['many', 'medium', 'few'] as const;
type Group = (typeof GROUP_METRICS)[number];

export interface AggregateRow {
  method: string;
  label: string;
  runs: number;
  mean: Record<Metric, number>;
  /** Sample standard deviation (0 for a single run). */
  std: Record<Metric, number>;
  /** Mean and std of each group's recall; null when a run of the row has no such group. */
  groups?: Record<Group, { mean: number; std: number } | null>;
  /** Multi-label rows (ResultRow.metric 'ap'): the metrics are of per-class AP. */
  ap?: boolean;
}

/** The method a run belongs to: its name without a trailing `-s<seed>`. */
export function methodOf(runName: string): string {
  return runName.replace(/-s\d+$/, '');
}

/** A row selection that matches nothing or is not a regular expression (`--rows`): exit status 2. */
export class RowSelectionError extends Error {
  override name = 'RowSelectionError';
}

/** The rows whose model label matches `pattern` (all when undefined); an error naming the labels when none does. */
export function selectRows(rows: AggregateRow[], pattern?: string): AggregateRow[] {
  if (pattern === undefined) return rows;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (e) {
    throw new RowSelectionError(`--rows: not a regular expression: '${pattern}' (${(e as Error).message})`);
  }
  const kept = rows.filter((r) => re.test(r.label));
  if (kept.length === 0) {
    throw new RowSelectionError(`--rows '${pattern}' matches no row; the runs' rows are: ${[...new Set(rows.map((r) => `'${r.label}'`))].join(', ')}`);
  }
  return kept;
}

/** Which evaluation a row's metrics come from: the test set, or the validation split (data.valPerClass). */
export type EvalSet = 'test' | 'val';

const meanStd = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
};

export function aggregateRuns(runs: { name: string; rows: ResultRow[] }[], set: EvalSet = 'test'): AggregateRow[] {
  const groups = new Map<string, { method: string; label: string; rows: ResultRow[] }>();
  for (const run of runs) {
    for (const row of run.rows) {
      if (set === 'val' && !row.val) {
        throw new Error(`run ${run.name}, row '${row.label}': no validation metrics (the run had no --data.valPerClass, or is multi-label)`);
      }
      // fine-tunes are numbered per run; "initial model (path)" differs per seed, and so does the
      // member count of a greedy soup ("BTM merged (greedy-hmean, 3 of 10)"): pooled without it
      const label = row.step === 'init' ? 'initial model' : row.step === 'btm-merge' ? row.label.replace(/, \d+ of \d+\)$/, ')') : row.label;
      const key = `${methodOf(run.name)}\u0000${label}`;
      if (!groups.has(key)) groups.set(key, { method: methodOf(run.name), label, rows: [] });
      groups.get(key)!.rows.push(row);
    }
  }
  return [...groups.values()].map(({ method, label, rows }) => {
    const metrics = rows.map((r) => (set === 'val' ? r.val! : r));
    const mean = {} as Record<Metric, number>, std = {} as Record<Metric, number>;
    for (const m of AGGREGATED_METRICS) ({ mean: mean[m], std: std[m] } = meanStd(metrics.map((r) => r[m])));
    const g = {} as Record<Group, { mean: number; std: number } | null>;
    for (const k of GROUP_METRICS) {
      const v = metrics.map((r) => r[k]);
      g[k] = v.every((x): x is number => typeof x === 'number') ? meanStd(v) : null;
    }
    const anyGroup = GROUP_METRICS.some((k) => g[k] !== null);
    return { method, label, runs: rows.length, mean, std, ...(anyGroup ? { groups: g } : {}), ...(rows.every((r) => r.metric === 'ap') ? { ap: true } : {}) };
  });
}

/** Reads <dir>/results.json of each run directory. */
export function readRuns(dirs: string[]): { name: string; rows: ResultRow[] }[] {
  return dirs.map((dir) => {
    const file = join(dir, 'results.json');
    let parsed: { config?: { name?: string }; rows?: ResultRow[] };
    if (!existsSync(file)) {
      throw new Error(`${dir}: no results.json (${existsSync(dir) ? 'not a btm run directory, or a run that has not finished a step yet' : 'no such directory'})`);
    }
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
    if (!parsed.config?.name || !Array.isArray(parsed.rows)) throw new Error(`${file}: not a btm-node results file (no config.name / rows)`);
    return { name: parsed.config.name, rows: parsed.rows };
  });
}

/** mean ± std in percent; a row of one run has no spread to show: the value alone. */
const pm = (mean: number, std: number, runs: number) => (runs > 1 ? `${(mean * 100).toFixed(2)} ± ${(std * 100).toFixed(2)}` : (mean * 100).toFixed(2));

/** A terminal / Markdown-friendly table: mean ± std in percent (the value alone for a single run). */
export function formatAggregate(rows: AggregateRow[], markdown = false): string {
  // multi-label runs (every row of AP): mAP first, the means and minimum of per-class AP, top-1 hit rate
  const ap = rows.length > 0 && rows.every((r) => r.ap);
  const cols = [
    { key: 'method', header: 'method', align: 'left' as const },
    { key: 'label', header: 'model', align: 'left' as const },
    { key: 'runs', header: 'runs' },
    ...(ap ? [{ key: 'map', header: 'mAP %' }] : []),
    { key: 'h', header: ap ? 'H-AP %' : 'H-mean %' },
    { key: 'g', header: ap ? 'G-AP %' : 'G-mean %' },
    { key: 'low', header: ap ? 'min AP %' : 'lowest %' },
    { key: 'acc', header: ap ? 'top-1 hit %' : 'accuracy %' },
    // many / medium / few: where any row has those groups (per-class counts from the run's split)
    ...(rows.some((r) => r.groups) ? GROUP_METRICS.map((k) => ({ key: k, header: `${k} %` })) : []),
  ];
  const cells = rows.map((r) => ({
    method: r.method, label: r.label, runs: r.runs,
    map: pm(r.mean.arithmeticMean, r.std.arithmeticMean, r.runs),
    h: pm(r.mean.harmonicMean, r.std.harmonicMean, r.runs), g: pm(r.mean.geometricMean, r.std.geometricMean, r.runs),
    low: pm(r.mean.lowestRecall, r.std.lowestRecall, r.runs), acc: pm(r.mean.accuracy, r.std.accuracy, r.runs),
    ...Object.fromEntries(GROUP_METRICS.map((k) => {
      const v = r.groups?.[k];
      return [k, v ? pm(v.mean, v.std, r.runs) : '-'];
    })),
  }));
  if (!markdown) return formatTable(cols, cells);
  const line = (v: unknown[]) => `| ${v.join(' | ')} |`;
  return [line(cols.map((c) => c.header)), line(cols.map(() => '---')), ...cells.map((c) => line(cols.map((k) => (c as Record<string, unknown>)[k.key])))].join('\n');
}

/**
 * The records of a run's metrics.jsonl as a table: a row per epoch (lr, training loss and accuracy,
 * images/s) and per evaluation (test accuracy, H-mean, G-mean, lowest recall).
 */
export function formatCurves(records: readonly MetricsRecord[]): string {
  const p = (v: unknown) => (typeof v === 'number' ? (v * 100).toFixed(2) : '');
  const rows = records.map((r) => r.kind === 'epoch'
    ? { step: r.step, epoch: `${r.epoch}/${r.epochs}`, lr: r.lr.toPrecision(3), loss: r.trainLoss.toFixed(4), trainAcc: p(r.trainAccuracy), ips: r.imagesPerSec.toFixed(0) }
    : { step: r.step, epoch: 'test', acc: p(r.accuracy), h: p(r.harmonicMean), g: p(r.geometricMean), low: p(r.lowestRecall) });
  return formatTable([
    { key: 'step', header: 'step', align: 'left' },
    { key: 'epoch', header: 'epoch', align: 'right' },
    { key: 'lr', header: 'lr', align: 'right' },
    { key: 'loss', header: 'loss', align: 'right' },
    { key: 'trainAcc', header: 'train acc %', align: 'right' },
    { key: 'ips', header: 'img/s', align: 'right' },
    { key: 'acc', header: 'test acc %', align: 'right' },
    { key: 'h', header: 'H-mean %', align: 'right' },
    { key: 'g', header: 'G-mean %', align: 'right' },
    { key: 'low', header: 'lowest %', align: 'right' },
  ], rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v]))));
}
