// `btm plot`: bars (mean ± std over seeds per method) and the grid (one metric over two settings read
// from the run names), from results.json files written here; the numbers drawn are read back from the SVG.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { barChartSvg, gridChartSvg } from '../src/report/chart.js';
import { aggregateRuns } from '../src/report/aggregate.js';
import { barChartOf, gridChartOf, parseMetrics } from '../src/report/plot.js';
import type { ResultRow } from '../src/pipeline/run-state.js';
import { cliRunner } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'btm-plot-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const btm = cliRunner(60_000);

type M = { h: number; g: number; low: number; acc: number };
const metrics = ({ h, g, low, acc }: M) => ({ harmonicMean: h, geometricMean: g, lowestRecall: low, accuracy: acc, arithmeticMean: acc, lowestClass: 0, zeroRecallClasses: 0 });
/** A result row with test metrics `t` and validation metrics `v`. */
function row(label: string, t: M, v: M = t, step = 'btm-merge'): ResultRow {
  return { step, stage: 'btm', label, ...metrics(t), perClassRecall: [], many: t.acc, medium: null, few: t.low, trainSeconds: 1, val: { ...metrics(v), many: v.acc, medium: null, few: v.low } } as ResultRow;
}
/** A run directory <root>/<name> holding results.json with these rows. */
function writeRun(name: string, rows: ResultRow[]): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), JSON.stringify({ format: 'btm-node-run', version: 2, status: 'complete', config: { name }, rows }));
  return dir;
}

// two methods over three seeds; the test and validation numbers differ
const seeds = [0, 1, 2];
const ce = (s: number): M => ({ h: 0.5 + 0.01 * s, g: 0.6 + 0.02 * s, low: 0.1 * s, acc: 0.8 + 0.005 * s });
const btmM = (s: number): M => ({ h: 0.7 - 0.03 * s, g: 0.75, low: 0.3 + 0.05 * s, acc: 0.85 + 0.01 * s });
const valOf = (m: M): M => ({ h: m.h - 0.1, g: m.g - 0.1, low: m.low / 2, acc: m.acc - 0.05 });
const dirs = [
  ...seeds.map((s) => writeRun(`ce-s${s}`, [row('pre-train', ce(s), valOf(ce(s)), 'pretrain')])),
  ...seeds.map((s) => writeRun(`btm-s${s}`, [row('initial model (x)', ce(s), valOf(ce(s)), 'init'), row('BTM merged (uniform)', btmM(s), valOf(btmM(s)))])),
];
const meanStd = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) };
};

const attr = (el: string, name: string) => Number(new RegExp(`\\b${name}="([^"]+)"`).exec(el)![1]);
const elements = (svg: string, cls: string) => svg.match(new RegExp(`<(?:rect|line|text) class="${cls}"[^>]*>(?:[^<]*</text>)?`, 'g')) ?? [];
const texts = (svg: string, cls: string) => elements(svg, cls).map((e) => e.replace(/^.*>([^<]*)<\/text>$/, '$1'));

/** The bars of a bar-chart SVG, series-major: each bar's height with its error bar's span (pixels). */
function barsOf(svg: string) {
  const bars = elements(svg, 'bar').map((e) => ({ x: attr(e, 'x') + attr(e, 'width') / 2, h: attr(e, 'height'), top: attr(e, 'y') }));
  const errs = elements(svg, 'error-bar').map((e) => ({ x: attr(e, 'x1'), span: attr(e, 'y1') - attr(e, 'y2') }));
  return bars.map((b) => ({ ...b, span: errs.find((e) => Math.abs(e.x - b.x) < 0.02)?.span }));
}

describe('bar chart of aggregated runs', () => {
  it('draws each method and metric: the value written is the mean, the bar its height, the error bar 2 std', () => {
    const rows = aggregateRuns(dirs.map((d, i) => ({ name: `${i < 3 ? 'ce' : 'btm'}-s${i % 3}`, rows: JSON.parse(readFileSync(join(d, 'results.json'), 'utf8')).rows })));
    const picked = rows.filter((r) => r.label !== 'initial model');
    const chart = barChartOf(picked, ['harmonicMean', 'geometricMean', 'lowestRecall', 'accuracy'], 't');
    expect(chart.series.map((s) => s.label)).toEqual(['ce', 'btm']);
    expect(chart.groups).toEqual(['H-mean', 'G-mean', 'lowest recall', 'accuracy']);
    const svg = barChartSvg(chart);
    const values = texts(svg, 'value').map(Number);
    const bars = barsOf(svg);
    expect(bars).toHaveLength(8);
    // 100% of the axis in pixels, from the plot's top and bottom grid ticks
    const expected = [ce, btmM].flatMap((f) => (['h', 'g', 'low', 'acc'] as const).map((k) => meanStd(seeds.map((s) => f(s)[k]))));
    const scale = bars[0].h / expected[0].mean;
    expected.forEach(({ mean, std }, i) => {
      expect(values[i]).toBeCloseTo(mean * 100, 2);
      expect(bars[i].h / scale).toBeCloseTo(mean, 3);
      if (std > 0) expect(bars[i].span! / scale / 2).toBeCloseTo(std, 3);
      else expect(bars[i].span).toBe(0);
    });
    expect(texts(svg, 'legend')).toEqual(['ce (3 runs)', 'btm (3 runs)']);
  });

  it('clips an error bar at 0% and 100% and refuses a mean outside [0, 1], naming the series', () => {
    const svg = barChartSvg({ title: 't', groups: ['a'], series: [{ label: 's', values: [{ mean: 0.05, std: 0.2, runs: 2 }] }] });
    const [bar] = barsOf(svg);
    // from 0 (the bar's bottom) to mean + std
    expect(bar.span! / bar.h).toBeCloseTo(0.25 / 0.05, 2);
    expect(() => barChartSvg({ title: 't', groups: ['a'], series: [{ label: 's', values: [{ mean: 1.2, std: 0, runs: 1 }] }] })).toThrow('series "s", a: mean 1.2');
  });
});

// an N_D x N_C grid over two seeds, the cell (N_D 10, N_C 10) missing
const cells: [number, number][] = [[2, 5], [4, 5], [2, 10], [4, 10], [10, 5]];
const h = (nd: number, nc: number, s: number) => 0.3 + nd / 100 + nc / 1000 + s * 0.01 * (nd % 3);
const runs = cells.flatMap(([nd, nc]) => [0, 1].map((s) => ({
  name: `nd${nd}-nc${nc}-s${s}`,
  rows: [row('initial model (x)', ce(s), ce(s), 'init'), row('BTM merged (uniform)', { h: h(nd, nc, s), g: 0.5, low: 0, acc: 0.7 })],
})));

describe('grid chart of aggregated runs', () => {

  it('puts each run at its (x, y) from its name: mean and std written in the cell, a missing cell marked', () => {
    const rows = aggregateRuns(runs).filter((r) => r.label.startsWith('BTM merged'));
    const chart = gridChartOf(rows, 'nd(\\d+)-nc(\\d+)', 'harmonicMean', { title: 't', xLabel: 'N_D', yLabel: 'N_C' });
    expect(chart.xs).toEqual(['2', '4', '10']);
    expect(chart.ys).toEqual(['5', '10']);
    const svg = gridChartSvg(chart);
    const values = texts(svg, 'cell-value'), stds = texts(svg, 'cell-std');
    // row-major over (N_C 5: N_D 2, 4, 10), (N_C 10: N_D 2, 4, then 10 missing)
    const order: [number, number][] = [[2, 5], [4, 5], [10, 5], [2, 10], [4, 10]];
    expect(values.slice(0, 5).map(Number)).toEqual(order.map(([nd, nc]) => Number((meanStd([0, 1].map((s) => h(nd, nc, s))).mean * 100).toFixed(2))));
    expect(stds.map((t) => Number(t.replace('+/- ', '')))).toEqual(order.map(([nd, nc]) => Number((meanStd([0, 1].map((s) => h(nd, nc, s))).std * 100).toFixed(2))));
    expect(values[5]).toBe('-');
    expect(elements(svg, 'empty-cell')).toHaveLength(1);
    expect(texts(svg, 'column-label')).toEqual(['2', '4', '10']);
    expect(texts(svg, 'row-label')).toEqual(['5', '10']);
  });

  it('refuses runs outside the pattern, several rows in a cell, a pattern without two groups', () => {
    const rows = aggregateRuns(runs);
    expect(() => gridChartOf(rows, 'nd(\\d+)-nc(\\d+)', 'harmonicMean', { title: 't' })).toThrow(/run nd2-nc5 has 2 rows \('initial model', 'BTM merged \(uniform\)'\): choose one per run with --rows/);
    const merged = rows.filter((r) => r.label.startsWith('BTM'));
    expect(() => gridChartOf(merged, 'nd(\\d+)-nc5', 'harmonicMean', { title: 't' })).toThrow("has 1 capture group(s); it needs two");
    expect(() => gridChartOf(merged, 'nd(\\d+)-nc(5)', 'harmonicMean', { title: 't' })).toThrow("does not match run(s) nd2-nc10, nd4-nc10");
    expect(() => gridChartOf(merged, 'x(\\d+)-y(\\d+)', 'harmonicMean', { title: 't' })).toThrow("matches no run; the runs' methods (names without -s<seed>) are: nd2-nc5");
  });
});

describe('aggregating greedy soups', () => {
  it("pools a greedy soup's seeds whatever member count each kept (the label without it)", () => {
    const runs = [3, 5].map((k, s) => ({ name: `merge-greedy-hmean-s${s}`, rows: [row(`BTM merged (greedy-hmean, ${k} of 10)`, ce(s))] }));
    const rows = aggregateRuns(runs);
    expect(rows.map((r) => [r.label, r.runs])).toEqual([['BTM merged (greedy-hmean)', 2]]);
  });
});

describe('parseMetrics', () => {
  it('knows the metrics and names an unknown one', () => {
    expect(parseMetrics('accuracy, few')).toEqual(['accuracy', 'few']);
    expect(() => parseMetrics('accuracy,hmean')).toThrow("--metrics: unknown metric 'hmean' (one of harmonicMean, geometricMean");
  });
});

describe('btm plot', () => {
  it('bars: writes the SVG and PNG; --set val draws the validation numbers', async () => {
    const out = join(root, 'bars.svg');
    const r = await btm('plot', 'bars', ...dirs, '--rows', '^(pre-train|BTM merged)', '--set', 'val', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('2 row(s) of 6 run(s), validation split');
    const svg = readFileSync(out, 'utf8');
    const want = [ce, btmM].flatMap((f) => (['h', 'g', 'low', 'acc'] as const).map((k) => meanStd(seeds.map((s) => valOf(f(s))[k])).mean * 100));
    texts(svg, 'value').map(Number).forEach((v, i) => expect(v).toBeCloseTo(want[i], 2));
    const png = readFileSync(join(root, 'bars.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(960);
  });

  it('grid: one metric over the runs named by the pattern', async () => {
    const gridDirs = runs.map((r) => writeRun(r.name, r.rows));
    const r = await btm('plot', 'grid', ...gridDirs, '--rows', '^BTM merged', '--grid', 'nd(\\d+)-nc(\\d+)', '--metric', 'geometricMean', '--x', 'N_D', '--y', 'N_C', '--out', join(root, 'grid.png'));
    expect(r.code, r.stderr).toBe(0);
    const svg = readFileSync(join(root, 'grid.svg'), 'utf8');
    expect(texts(svg, 'cell-value').filter((t) => t !== '-').map(Number)).toEqual([50, 50, 50, 50, 50]);
    expect(svg).toContain('>N_D</text>');
  });

  it('bad input gets a clear error naming it (exit 2, or 1 for an unreadable run)', async () => {
    const out = ['--out', join(root, 'x.svg')];
    const cases: [string[], number, RegExp][] = [
      [['plot', 'bars', ...dirs, '--metrics', 'accuracy,top5', ...out], 2, /--metrics: unknown metric 'top5' \(one of harmonicMean/],
      [['plot', 'grid', ...dirs, '--metric', 'f1', '--grid', 'a(\\d)(\\d)', ...out], 2, /--metric: unknown metric 'f1'/],
      [['plot', 'bars', ...dirs, '--rows', '^nothing', ...out], 2, /--rows '\^nothing' matches no row; the runs' rows are: 'pre-train', 'initial model', 'BTM merged \(uniform\)'/],
      [['plot', 'grid', ...dirs, '--rows', 'BTM', '--grid', 'nd(\\d+)-nc(\\d+)', ...out], 2, /--grid 'nd\(\\d\+\)-nc\(\\d\+\)' matches no run; the runs' methods .* are: btm$/m],
      [['plot', 'grid', ...dirs, ...out], 2, /btm plot grid needs --grid/],
      [['plot', 'bars', ...dirs, '--out', join(root, 'x.jpg')], 2, /--out '.*x\.jpg': name an \.svg or \.png file/],
      [['plot', 'bars', dirs[0], join(root, 'missing-s0'), ...out], 1, /missing-s0: no results\.json \(no such directory\)/],
      [['plot', 'bars', dirs[0], writeRun('empty-s0', []), ...out], 2, /empty-s0 \(run empty-s0\): no result rows yet/],
      [['plot', 'lines', ...dirs, ...out], 2, /Invalid values:[\s\S]*kind/],
      [['plot', 'bars', ...dirs, dirs[1], ...out], 2, /run ce-s1 is given twice \(.*ce-s1, .*ce-s1\): each seed's run counts once/],
    ];
    mkdirSync(join(root, 'not-a-run'), { recursive: true });
    cases.push([['plot', 'bars', join(root, 'not-a-run'), ...out], 1, /not-a-run: no results\.json \(not a btm run directory/]);
    const noVal = writeRun('noval-s0', [{ ...row('m', ce(0)), val: undefined }]);
    cases.push([['plot', 'bars', noVal, '--set', 'val', ...out], 1, /run noval-s0, row 'm': no validation metrics/]);
    for (const [args, code, message] of cases) {
      const r = await btm(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(/^btm: /);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    }
  });
});
