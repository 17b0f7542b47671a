/**
 * Aggregates the results of several runs (e.g. one method over 3 seeds): rows are grouped by method
 * (the run name without its `-s<seed>` suffix) and row label, with mean and spread of each metric.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultRow } from '../pipeline/run-state.js';
import { formatTable } from './table.js';

export const AGGREGATED_METRICS = ['harmonicMean', 'geometricMean', 'lowestRecall', 'accuracy'] as const;
type Metric = (typeof AGGREGATED_METRICS)[number];

export interface AggregateRow {
  method: string;
  label: string;
  runs: number;
  mean: Record<Metric, number>;
  /** Sample standard deviation (0 for a single run). */
  std: Record<Metric, number>;
}

/** The method a run belongs to: its name without a trailing `-s<seed>`. */
export function methodOf(runName: string): string {
  return runName.replace(/-s\d+$/, '');
}

export function aggregateRuns(runs: { name: string; rows: ResultRow[] }[]): AggregateRow[] {
  const groups = new Map<string, { method: string; label: string; rows: ResultRow[] }>();
  for (const run of runs) {
    for (const row of run.rows) {
      // fine-tunes are numbered per run; "initial model (path)" differs per seed
      const label = row.step === 'init' ? 'initial model' : row.label;
      const key = `${methodOf(run.name)}\u0000${label}`;
      if (!groups.has(key)) groups.set(key, { method: methodOf(run.name), label, rows: [] });
      groups.get(key)!.rows.push(row);
    }
  }
  return [...groups.values()].map(({ method, label, rows }) => {
    const stat = (m: Metric) => {
      const v = rows.map((r) => r[m]);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
      return [mean, std] as const;
    };
    const mean = {} as Record<Metric, number>, std = {} as Record<Metric, number>;
    for (const m of AGGREGATED_METRICS) [mean[m], std[m]] = stat(m);
    return { method, label, runs: rows.length, mean, std };
  });
}

/** Reads <dir>/results.json of each run directory. */
export function readRuns(dirs: string[]): { name: string; rows: ResultRow[] }[] {
  return dirs.map((dir) => {
    const file = join(dir, 'results.json');
    let parsed: { config?: { name?: string }; rows?: ResultRow[] };
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
    if (!parsed.config?.name || !Array.isArray(parsed.rows)) throw new Error(`${file}: not a btm-node results file (no config.name / rows)`);
    return { name: parsed.config.name, rows: parsed.rows };
  });
}

const pm = (mean: number, std: number) => `${(mean * 100).toFixed(2)} ± ${(std * 100).toFixed(2)}`;

/** A terminal / Markdown-friendly table: mean ± std in percent. */
export function formatAggregate(rows: AggregateRow[], markdown = false): string {
  const cols = [
    { key: 'method', header: 'method', align: 'left' as const },
    { key: 'label', header: 'model', align: 'left' as const },
    { key: 'runs', header: 'runs' },
    { key: 'h', header: 'H-mean %' },
    { key: 'g', header: 'G-mean %' },
    { key: 'low', header: 'lowest %' },
    { key: 'acc', header: 'accuracy %' },
  ];
  const cells = rows.map((r) => ({
    method: r.method, label: r.label, runs: r.runs,
    h: pm(r.mean.harmonicMean, r.std.harmonicMean), g: pm(r.mean.geometricMean, r.std.geometricMean),
    low: pm(r.mean.lowestRecall, r.std.lowestRecall), acc: pm(r.mean.accuracy, r.std.accuracy),
  }));
  if (!markdown) return formatTable(cols, cells);
  const line = (v: unknown[]) => `| ${v.join(' | ')} |`;
  return [line(cols.map((c) => c.header)), line(cols.map(() => '---')), ...cells.map((c) => line(cols.map((k) => (c as Record<string, unknown>)[k.key])))].join('\n');
}
