/**
 * `btm plot`: the aggregated rows of several runs (methods over seeds, src/report/aggregate.ts) as
 * charts: grouped bars with error bars per method (mean ± std over seeds), or a grid of one metric over
 * two settings read from the run names (the paper's N_D x N_C ablation).
 */
import type { AggregateRow } from './aggregate.js';
import type { BarChartOptions, GridChartOptions, MeanStd } from './chart.js';

/** The metrics a chart can draw, with the names they are drawn under. */
export const PLOT_METRICS = {
  harmonicMean: 'H-mean',
  geometricMean: 'G-mean',
  lowestRecall: 'lowest recall',
  accuracy: 'accuracy',
  arithmeticMean: 'mean recall',
  many: 'many',
  medium: 'medium',
  few: 'few',
} as const;
export type PlotMetric = keyof typeof PLOT_METRICS;
export const DEFAULT_BAR_METRICS: PlotMetric[] = ['harmonicMean', 'geometricMean', 'lowestRecall', 'accuracy'];

/** A bad plot request (unknown metric, nothing matched, a row without the metric): exit status 2. */
export class PlotError extends Error {
  override name = 'PlotError';
}

/** `--metrics a,b` / `--metric a`: known metric names, else an error naming the unknown one. */
export function parseMetrics(text: string, flag = '--metrics'): PlotMetric[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new PlotError(`${flag}: no metric given (one of ${Object.keys(PLOT_METRICS).join(', ')})`);
  for (const n of names) {
    if (!(n in PLOT_METRICS)) throw new PlotError(`${flag}: unknown metric '${n}' (one of ${Object.keys(PLOT_METRICS).join(', ')})`);
  }
  return names as PlotMetric[];
}

/** A row's value of `metric` (mean, std over its runs); an error where the row has no such group. */
function valueOf(row: AggregateRow, metric: PlotMetric): MeanStd {
  if (metric === 'many' || metric === 'medium' || metric === 'few') {
    const g = row.groups?.[metric];
    if (!g) throw new PlotError(`${row.method}, '${row.label}': no ${metric}-shot group (a run of it has no class in that group)`);
    return { ...g, runs: row.runs };
  }
  return { mean: row.mean[metric], std: row.std[metric], runs: row.runs };
}

/** Series names: the method where each method has one row, the row label where there is one method, else both. */
function seriesLabels(rows: AggregateRow[]): string[] {
  const methods = new Set(rows.map((r) => r.method));
  const oneRowEach = methods.size === rows.length;
  return rows.map((r) => (oneRowEach ? r.method : methods.size === 1 ? r.label : `${r.method}: ${r.label}`));
}

/** Grouped bars: one group per metric, one bar (mean, error bar ± std) per row. */
export function barChartOf(rows: AggregateRow[], metrics: PlotMetric[], title: string): BarChartOptions {
  if (rows.length === 0) throw new PlotError('no rows to plot');
  const labels = seriesLabels(rows);
  return {
    title,
    groups: metrics.map((m) => PLOT_METRICS[m]),
    series: rows.map((r, i) => ({ label: labels[i], values: metrics.map((m) => valueOf(r, m)) })),
  };
}

const numericOrder = (values: string[]) =>
  values.every((v) => Number.isFinite(Number(v))) ? [...values].sort((a, b) => Number(a) - Number(b)) : values;

/**
 * A grid of `metric` over two settings read from each method's name (the run name without -s<seed>)
 * by `pattern`'s first two groups (x, then y): 'nd(\d+)-nc(\d+)' reads nd4-nc10 as x 4, y 10. Every
 * method must match and have exactly one row in a cell (choose it with selectRows, src/report/aggregate.ts).
 */
export function gridChartOf(
  rows: AggregateRow[],
  pattern: string,
  metric: PlotMetric,
  o: { title: string; xLabel?: string; yLabel?: string },
): GridChartOptions {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new PlotError(`--grid: not a regular expression: '${pattern}' (${(e as Error).message})`);
  }
  const groups = new RegExp(`${pattern}|`).exec('')!.length - 1;
  if (groups < 2) throw new PlotError(`--grid '${pattern}' has ${groups} capture group(s); it needs two, x then y (e.g. 'nd(\\d+)-nc(\\d+)')`);
  const methods = [...new Set(rows.map((r) => r.method))];
  const matched = methods.filter((m) => re.test(m));
  if (matched.length === 0) throw new PlotError(`--grid '${pattern}' matches no run; the runs' methods (names without -s<seed>) are: ${methods.join(', ')}`);
  const unmatched = methods.filter((m) => !re.test(m));
  if (unmatched.length) throw new PlotError(`--grid '${pattern}' does not match run(s) ${unmatched.join(', ')} (every run given must be a cell of the grid)`);
  const cellOf = new Map<string, AggregateRow>();
  const xs: string[] = [], ys: string[] = [];
  for (const m of methods) {
    const [, x, y] = re.exec(m)!;
    const own = rows.filter((r) => r.method === m);
    if (own.length !== 1) {
      throw new PlotError(`run ${m} has ${own.length} rows (${own.map((r) => `'${r.label}'`).join(', ')}): choose one per run with --rows`);
    }
    const key = `${x}\u0000${y}`;
    if (cellOf.has(key)) throw new PlotError(`runs ${cellOf.get(key)!.method} and ${m} are both the cell x ${x}, y ${y} of --grid '${pattern}'`);
    cellOf.set(key, own[0]);
    if (!xs.includes(x)) xs.push(x);
    if (!ys.includes(y)) ys.push(y);
  }
  const xOrder = numericOrder(xs), yOrder = numericOrder(ys);
  return {
    title: o.title,
    xLabel: o.xLabel ?? 'x',
    yLabel: o.yLabel ?? 'y',
    xs: xOrder,
    ys: yOrder,
    cells: yOrder.map((y) => xOrder.map((x) => {
      const r = cellOf.get(`${x}\u0000${y}`);
      return r ? valueOf(r, metric) : null;
    })),
    metricLabel: `${PLOT_METRICS[metric]} %`,
  };
}
