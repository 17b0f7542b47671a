/**
 * Per-class recall chart in the style of figure 3 of the BTM paper: classes along x (sorted head
 * to tail by training-set size when counts are given, with the many / medium / few bands shaded),
 * recall 0-100% along y, one bar group (or one line, for many classes) per series, and each
 * series' mean / H-mean / G-mean in the legend.
 *
 * The chart is laid out once as a list of primitive shapes, which are then rendered to SVG or to a
 * {@link Raster} (PNG); both outputs share every coordinate.
 */
import { classGroups, generalizedMean, type Group } from '../metrics.js';
import { FONT, Raster, type Color } from './png.js';
import { formatPercent } from './table.js';

export interface RecallSeries {
  label: string;
  /** Recall per class, a fraction in [0, 1]; NaN for a class without test samples. */
  recall: number[];
}

export interface RecallChartOptions {
  title: string;
  series: RecallSeries[];
  /** Class names, one per class; shown under the bars when there are at most 40 classes. */
  classNames?: string[];
  /** Training images per class: sorts the classes head to tail and shades the many / medium / few bands. */
  trainCounts?: number[];
  /** The y axis title (default 'Recall'; a multi-label run's chart says 'AP'). */
  axisLabel?: string;
  /** Default 960. */
  width?: number;
  /** Default 540. */
  height?: number;
  /** Bars per class, or one line per series; default 'bars' up to 40 classes, 'lines' above. */
  style?: 'bars' | 'lines';
}

type Anchor = 'start' | 'middle' | 'end';
type Shape =
  | { kind: 'rect'; x: number; y: number; w: number; h: number; fill: Color; role?: string }
  | { kind: 'line'; x1: number; y1: number; x2: number; y2: number; stroke: Color; width?: number; role?: string }
  /** (x, y): the anchor point on the text's top edge; `vertical` text reads bottom to top. */
  | { kind: 'text'; x: number; y: number; text: string; fill: Color; scale: number; anchor: Anchor; vertical?: boolean; role?: string };

interface Layout {
  width: number;
  height: number;
  shapes: Shape[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const BANDS: Record<Group, { fill: Color; label: string }> = {
  many: { fill: '#f3f3f3', label: 'Many' },
  medium: { fill: '#e8e8e8', label: 'Medium' },
  few: { fill: '#dcdcdc', label: 'Few' },
};
const INK = '#222222';
const GRID = '#c8c8c8';
const MAX_LABELLED_CLASSES = 40;
const MAX_NAME_CHARS = 14;

/** Pixel width of `text` in the built-in font (the SVG uses a monospace font of the same advance). */
const textWidth = (text: string, scale = 1) => Math.max(0, [...text].length * FONT.advance - 1) * scale;

/** Throws a RangeError unless the options describe a drawable chart; returns the class count. */
function validate(opts: RecallChartOptions): number {
  const { series, classNames, trainCounts } = opts;
  if (!Array.isArray(series) || series.length === 0) throw new RangeError('recall chart needs at least one series');
  const first = series[0];
  const n = first.recall.length;
  if (n === 0) throw new RangeError(`series "${first.label}" has no recall values`);
  for (const s of series) {
    if (s.recall.length !== n) {
      throw new RangeError(
        `series "${s.label}" has ${s.recall.length} recall values, expected ${n} as in series "${first.label}"`,
      );
    }
    s.recall.forEach((r, i) => {
      if (typeof r !== 'number' || !(Number.isNaN(r) || (r >= 0 && r <= 1))) {
        throw new RangeError(`series "${s.label}": recall[${i}] = ${r} is not in [0, 1] (or NaN for a missing class)`);
      }
    });
  }
  if (classNames !== undefined && classNames.length !== n) {
    throw new RangeError(`classNames has ${classNames.length} entries, expected ${n} (one per class)`);
  }
  if (trainCounts !== undefined && trainCounts.length !== n) {
    throw new RangeError(`trainCounts has ${trainCounts.length} entries, expected ${n} (one per class)`);
  }
  return n;
}

/** One legend line per series, "label   mean x%   H-mean y%   G-mean z%", columns aligned. */
function legendLines(series: readonly RecallSeries[]): string[] {
  const cells = series.map((s) => {
    const present = s.recall.filter((r) => !Number.isNaN(r));
    const [mean, h, g] = [1, -1, 0].map((p) => formatPercent(generalizedMean(present, p)));
    return [s.label, `mean ${mean}`, `H-mean ${h}`, `G-mean ${g}`];
  });
  const widths = cells[0].map((_, k) => Math.max(...cells.map((row) => row[k].length)));
  return cells.map((row) => row.map((cell, k) => cell.padEnd(widths[k])).join('   ').trimEnd());
}

/** Shortens `text` to at most `max` characters, marking a cut with '.'. */
const clip = (text: string, max: number) => ([...text].length <= max ? text : [...text].slice(0, max - 1).join('') + '.');

/** Lays the chart out as shapes (validating the options first). */
/** Adds a text shape (ink, scale 1) to `shapes`. */
function textAdder(shapes: Shape[]) {
  return (x: number, y: number, str: string, anchor: Anchor = 'start', extra: Partial<Extract<Shape, { kind: 'text' }>> = {}) =>
    shapes.push({ kind: 'text', x, y, text: str, fill: INK, scale: 1, anchor, ...extra });
}

/** The y axis both charts share: grid lines and ticks at 0-100% every 20 points, and its vertical title. */
function percentAxis(
  shapes: Shape[],
  f: { pad: number; plotLeft: number; plotRight: number; plotTop: number; plotBottom: number },
  yOf: (fraction: number) => number,
  title: string,
): void {
  const text = textAdder(shapes);
  for (let pct = 0; pct <= 100; pct += 20) {
    const y = yOf(pct / 100);
    if (pct > 0) shapes.push({ kind: 'line', x1: f.plotLeft, y1: y, x2: f.plotRight, y2: y, stroke: GRID, role: 'grid' });
    shapes.push({ kind: 'line', x1: f.plotLeft - 4, y1: y, x2: f.plotLeft, y2: y, stroke: INK });
    text(f.plotLeft - 7, y - Math.floor(FONT.capHeight / 2), `${pct}%`, 'end');
  }
  text(f.pad, (f.plotTop + f.plotBottom) / 2, title, 'middle', { vertical: true });
}

function layoutRecallChart(opts: RecallChartOptions): Layout {
  const n = validate(opts);
  const { title, series, classNames, trainCounts, width = 960, height = 540 } = opts;
  const style = opts.style ?? (n > MAX_LABELLED_CLASSES ? 'lines' : 'bars');
  const groups = trainCounts && classGroups(trainCounts);
  // Head to tail: descending training count, ties in class order (sort is stable).
  const order = Array.from({ length: n }, (_, c) => c);
  if (trainCounts) order.sort((a, b) => trainCounts[b] - trainCounts[a]);

  const shapes: Shape[] = [];
  const text = textAdder(shapes);

  // Vertical budget: title, legend, band labels, plot, tick labels, axis title.
  const pad = 12;
  const lineH = FONT.height + 4;
  const legendTop = pad + 2 * FONT.height + 8;
  const plotTop = legendTop + series.length * lineH + 6 + (groups ? lineH : 4);
  const labelEveryClass = n <= MAX_LABELLED_CLASSES;
  const names = order.map((c) => clip(classNames?.[c] ?? String(c), MAX_NAME_CHARS));
  const tickLabelH = labelEveryClass && classNames ? Math.max(...names.map((s) => textWidth(s))) : FONT.height;
  const plotBottom = height - pad - FONT.height - 8 - tickLabelH - 6;
  const plotLeft = pad + FONT.height + 8 + textWidth('100%') + 6;
  const plotRight = width - pad - 8;
  const plotW = plotRight - plotLeft, plotH = plotBottom - plotTop;
  if (!Number.isInteger(width) || !Number.isInteger(height)) {
    throw new RangeError(`chart size must be integers, got ${width}x${height}`);
  }
  if (plotW < 40 || plotH < 40) {
    throw new RangeError(`chart size ${width}x${height} is too small (plot area ${plotW}x${plotH})`);
  }
  const slot = plotW / n;
  const xOf = (rank: number) => plotLeft + rank * slot;
  const yOf = (recall: number) => plotBottom - recall * plotH;

  shapes.push({ kind: 'rect', x: 0, y: 0, w: width, h: height, fill: '#ffffff', role: 'background' });
  text(width / 2, pad, title, 'middle', { scale: 2, role: 'title' });

  // Legend: one row per series.
  legendLines(series).forEach((line, j) => {
    const y = legendTop + j * lineH;
    shapes.push({ kind: 'rect', x: plotLeft, y, w: 14, h: FONT.capHeight, fill: PALETTE[j % PALETTE.length], role: 'legend-swatch' });
    text(plotLeft + 20, y, line, 'start', { role: 'legend' });
  });

  // Many / medium / few bands: contiguous runs of the sorted classes, labelled above the plot.
  if (groups) {
    for (let start = 0; start < n; ) {
      const group = groups[order[start]];
      let end = start;
      while (end < n && groups[order[end]] === group) end++;
      const x = xOf(start), w = xOf(end) - x;
      shapes.push({ kind: 'rect', x, y: plotTop, w, h: plotH, fill: BANDS[group].fill, role: 'band' });
      const label = [`${BANDS[group].label} (${end - start})`, BANDS[group].label].find((l) => textWidth(l) <= w - 4);
      if (label) text(x + w / 2, plotTop - lineH + 2, label, 'middle', { role: 'band-label' });
      start = end;
    }
  }

  // Y grid, ticks and title.
  percentAxis(shapes, { pad, plotLeft, plotRight, plotTop, plotBottom }, yOf, opts.axisLabel ?? 'Recall');

  // Data.
  series.forEach((s, j) => {
    const color = PALETTE[j % PALETTE.length];
    if (style === 'bars') {
      const barW = (slot * 0.8) / series.length;
      order.forEach((c, rank) => {
        const r = s.recall[c];
        if (Number.isNaN(r)) return;
        shapes.push({ kind: 'rect', x: xOf(rank) + slot * 0.1 + j * barW, y: yOf(r), w: barW, h: r * plotH, fill: color, role: 'bar' });
      });
    } else {
      const cx = (rank: number) => xOf(rank) + slot / 2;
      const m = Math.min(3, Math.max(1, slot));
      order.forEach((c, rank) => {
        const r = s.recall[c];
        if (Number.isNaN(r)) return;
        const next = rank + 1 < n ? s.recall[order[rank + 1]] : NaN;
        if (!Number.isNaN(next)) {
          shapes.push({ kind: 'line', x1: cx(rank), y1: yOf(r), x2: cx(rank + 1), y2: yOf(next), stroke: color });
        }
        shapes.push({ kind: 'rect', x: cx(rank) - m / 2, y: yOf(r) - m / 2, w: m, h: m, fill: color, role: 'point' });
      });
    }
  });

  // Axes and x labels: every class when few, else evenly spaced rank ticks.
  shapes.push({ kind: 'line', x1: plotLeft, y1: plotTop, x2: plotLeft, y2: plotBottom, stroke: INK });
  shapes.push({ kind: 'line', x1: plotLeft, y1: plotBottom, x2: plotRight, y2: plotBottom, stroke: INK });
  const tickTop = plotBottom + 6;
  if (labelEveryClass) {
    names.forEach((name, rank) => {
      const x = xOf(rank) + slot / 2;
      if (classNames) text(x - FONT.capHeight / 2, tickTop, name, 'end', { vertical: true, role: 'class-label' });
      else text(x, tickTop, name, 'middle', { role: 'class-label' });
    });
  } else {
    const step = niceStep(n / 10);
    for (let rank = 0; rank < n; rank += step) {
      const x = xOf(rank) + slot / 2;
      shapes.push({ kind: 'line', x1: x, y1: plotBottom, x2: x, y2: plotBottom + 4, stroke: INK });
      text(x, tickTop, String(rank), 'middle');
    }
  }
  const xTitle = trainCounts ? 'Classes sorted by training-set size (head -> tail)' : labelEveryClass ? 'Class' : 'Class index';
  text((plotLeft + plotRight) / 2, height - pad - FONT.height, xTitle, 'middle');
  return { width, height, shapes };
}

/** The smallest of 1, 2, 5, 10, 20, 50, ... that is >= x. */
function niceStep(x: number): number {
  for (let p = 1; ; p *= 10) for (const m of [1, 2, 5]) if (m * p >= x) return m * p;
}

const escapeXml = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[ch]!);
const num = (v: number) => String(Math.round(v * 100) / 100);

function toSvg({ width, height, shapes }: Layout): string {
  const body = shapes.map((s) => {
    const cls = 'role' in s && s.role ? ` class="${s.role}"` : '';
    switch (s.kind) {
      case 'rect':
        return `<rect${cls} x="${num(s.x)}" y="${num(s.y)}" width="${num(s.w)}" height="${num(s.h)}" fill="${s.fill}"/>`;
      case 'line':
        return `<line${cls} x1="${num(s.x1)}" y1="${num(s.y1)}" x2="${num(s.x2)}" y2="${num(s.y2)}" stroke="${s.stroke}" stroke-width="${s.width ?? 1}"/>`;
      case 'text': {
        // The SVG baseline sits at the cap height below the shape's top edge.
        const rotate = s.vertical ? ` transform="rotate(-90 ${num(s.x)} ${num(s.y)})"` : '';
        return `<text${cls} x="${num(s.x)}" y="${num(s.y + FONT.capHeight * s.scale)}" font-size="${10 * s.scale}" fill="${s.fill}" text-anchor="${s.anchor}"${rotate}>${escapeXml(s.text)}</text>`;
      }
    }
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xml:space="preserve" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" shape-rendering="crispEdges">`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function toRaster({ width, height, shapes }: Layout): Raster {
  const raster = new Raster(width, height, '#ffffff');
  for (const s of shapes) {
    if (s.kind === 'rect') raster.fillRect(s.x, s.y, s.w, s.h, s.fill);
    else if (s.kind === 'line') raster.line(s.x1, s.y1, s.x2, s.y2, s.stroke, s.width);
    else {
      const w = textWidth(s.text, s.scale);
      const shift = s.anchor === 'start' ? 0 : s.anchor === 'middle' ? -w / 2 : -w;
      if (s.vertical) raster.text(s.x, s.y - shift, s.text, s.fill, s.scale, true);
      else raster.text(s.x + shift, s.y, s.text, s.fill, s.scale);
    }
  }
  return raster;
}

/** The recall chart as an SVG document. Throws a RangeError on inconsistent options. */
export function recallChartSvg(opts: RecallChartOptions): string {
  return toSvg(layoutRecallChart(opts));
}

/** The recall chart as an RGBA PNG, drawn with the built-in pixel font. Throws like {@link recallChartSvg}. */
export function recallChartPng(opts: RecallChartOptions): Buffer {
  return toRaster(layoutRecallChart(opts)).toPng();
}

/** A curve chart: y (0-100%) against x over [xMin, xMax], one polyline with point marks per series (figure 1 of the BTM paper). */
export interface CurveChartOptions {
  title: string;
  xLabel: string;
  /** Default 'Recall / accuracy'. */
  yLabel?: string;
  /** Each series: (x, y) points, y a fraction in [0, 1], x finite. */
  series: { label: string; points: { x: number; y: number }[] }[];
  /** Default 800 x 480. */
  width?: number;
  height?: number;
}

function layoutCurveChart(opts: CurveChartOptions): Layout {
  const { title, series, width = 800, height = 480 } = opts;
  if (series.length === 0) throw new RangeError('curve chart needs at least one series');
  for (const s of series) {
    if (s.points.length === 0) throw new RangeError(`series "${s.label}" has no points`);
    s.points.forEach((p, i) => {
      if (!Number.isFinite(p.x) || !(p.y >= 0 && p.y <= 1)) throw new RangeError(`series "${s.label}": point ${i} (${p.x}, ${p.y}) needs a finite x and y in [0, 1]`);
    });
  }
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const xMin = Math.min(...xs), xMax = Math.max(...xs) > xMin ? Math.max(...xs) : xMin + 1;
  const shapes: Shape[] = [];
  const text = textAdder(shapes);
  const pad = 12, lineH = FONT.height + 4;
  const legendTop = pad + 2 * FONT.height + 8;
  const plotTop = legendTop + series.length * lineH + 10;
  const plotLeft = pad + FONT.height + 8 + textWidth('100%') + 6;
  const plotRight = width - pad - 8;
  const plotBottom = height - pad - 2 * FONT.height - 14;
  if (plotRight - plotLeft < 40 || plotBottom - plotTop < 40) throw new RangeError(`chart size ${width}x${height} is too small`);
  const xOf = (x: number) => plotLeft + ((x - xMin) / (xMax - xMin)) * (plotRight - plotLeft);
  const yOf = (y: number) => plotBottom - y * (plotBottom - plotTop);
  shapes.push({ kind: 'rect', x: 0, y: 0, w: width, h: height, fill: '#ffffff', role: 'background' });
  text(width / 2, pad, title, 'middle', { scale: 2, role: 'title' });
  const lastOf = (s: CurveChartOptions['series'][number]) => s.points[s.points.length - 1];
  const firstOf = (s: CurveChartOptions['series'][number]) => s.points[0];
  series.forEach((s, j) => {
    const y = legendTop + j * lineH;
    shapes.push({ kind: 'rect', x: plotLeft, y, w: 14, h: FONT.capHeight, fill: PALETTE[j % PALETTE.length], role: 'legend-swatch' });
    text(plotLeft + 20, y, `${s.label}: ${formatPercent(firstOf(s).y)} at ${firstOf(s).x} -> ${formatPercent(lastOf(s).y)} at ${lastOf(s).x}`, 'start', { role: 'legend' });
  });
  percentAxis(shapes, { pad, plotLeft, plotRight, plotTop, plotBottom }, yOf, opts.yLabel ?? 'Recall / accuracy');
  for (let k = 0; k <= 10; k++) {
    const v = xMin + ((xMax - xMin) * k) / 10;
    const x = xOf(v);
    shapes.push({ kind: 'line', x1: x, y1: plotBottom, x2: x, y2: plotBottom + 4, stroke: INK });
    text(x, plotBottom + 6, String(Math.round(v * 100) / 100), 'middle');
  }
  series.forEach((s, j) => {
    const color = PALETTE[j % PALETTE.length];
    s.points.forEach((p, i) => {
      const q = s.points[i + 1];
      if (q) shapes.push({ kind: 'line', x1: xOf(p.x), y1: yOf(p.y), x2: xOf(q.x), y2: yOf(q.y), stroke: color, width: 2 });
      shapes.push({ kind: 'rect', x: xOf(p.x) - 2.5, y: yOf(p.y) - 2.5, w: 5, h: 5, fill: color, role: 'point' });
    });
  });
  shapes.push({ kind: 'line', x1: plotLeft, y1: plotTop, x2: plotLeft, y2: plotBottom, stroke: INK });
  shapes.push({ kind: 'line', x1: plotLeft, y1: plotBottom, x2: plotRight, y2: plotBottom, stroke: INK });
  text((plotLeft + plotRight) / 2, height - pad - FONT.height, opts.xLabel, 'middle');
  return { width, height, shapes };
}

/** The curve chart as an SVG document. Throws a RangeError on empty series or a point out of range. */
export function curveChartSvg(opts: CurveChartOptions): string {
  return toSvg(layoutCurveChart(opts));
}

/** The curve chart as an RGBA PNG (the built-in pixel font). */
export function curveChartPng(opts: CurveChartOptions): Buffer {
  return toRaster(layoutCurveChart(opts)).toPng();
}

/** The rows of `btm interpolate` (lambda, acc, h, g, low as fractions) as curve-chart series. */
export function interpolationSeries(rows: readonly { lambda: number; acc: number; h: number; g: number; low: number }[]): CurveChartOptions['series'] {
  const pick = (label: string, key: 'acc' | 'h' | 'g' | 'low') => ({ label, points: rows.map((r) => ({ x: r.lambda, y: r[key] })) });
  return [pick('accuracy', 'acc'), pick('H-mean', 'h'), pick('G-mean', 'g'), pick('lowest recall', 'low')];
}

/** One value of a bar or grid chart: the mean over runs and its spread, fractions in [0, 1]. */
export interface MeanStd {
  mean: number;
  /** Sample standard deviation over the runs (0 for one run). */
  std: number;
  runs: number;
}

const checkMeanStd = (v: MeanStd, where: string) => {
  if (!(v.mean >= 0 && v.mean <= 1) || !(v.std >= 0) || !Number.isFinite(v.std) || !(Number.isInteger(v.runs) && v.runs >= 1)) {
    throw new RangeError(`${where}: mean ${v.mean} must be in [0, 1], std ${v.std} finite and >= 0, runs ${v.runs} an integer >= 1`);
  }
};

/** The text written on a bar or in a cell: the mean in percent, 2 decimals; "+/- std" below it where runs > 1. */
const pct = (v: number) => (v * 100).toFixed(2);

/**
 * Grouped bars with error bars: one group per metric along x, one bar per series (method) in each,
 * height the mean over runs, the error bar mean ± std (clipped to 0-100%), the mean written above.
 */
export interface BarChartOptions {
  title: string;
  /** The groups along x (metric names). */
  groups: string[];
  /** One value per group each. */
  series: { label: string; values: MeanStd[] }[];
  /** Default 'Recall / accuracy (mean +/- std over runs)'. */
  yLabel?: string;
  /** Default 960 x 540. */
  width?: number;
  height?: number;
}

function layoutBarChart(opts: BarChartOptions): Layout {
  const { title, groups, series, width = 960, height = 540 } = opts;
  if (groups.length === 0) throw new RangeError('bar chart needs at least one group');
  if (series.length === 0) throw new RangeError('bar chart needs at least one series');
  for (const s of series) {
    if (s.values.length !== groups.length) throw new RangeError(`series "${s.label}" has ${s.values.length} values, expected ${groups.length} (one per group)`);
    s.values.forEach((v, i) => checkMeanStd(v, `series "${s.label}", ${groups[i]}`));
  }
  const shapes: Shape[] = [];
  const text = textAdder(shapes);
  const pad = 12, lineH = FONT.height + 4;
  const legendTop = pad + 2 * FONT.height + 8;
  const plotTop = legendTop + series.length * lineH + 10;
  const plotLeft = pad + FONT.height + 8 + textWidth('100%') + 6;
  const plotRight = width - pad - 8;
  const plotBottom = height - pad - 2 * FONT.height - 10;
  const plotW = plotRight - plotLeft, plotH = plotBottom - plotTop;
  if (plotW < 40 || plotH < 40) throw new RangeError(`chart size ${width}x${height} is too small for ${series.length} series (plot area ${plotW}x${plotH})`);
  const slot = plotW / groups.length;
  const barW = (slot * 0.8) / series.length;
  const yOf = (v: number) => plotBottom - v * plotH;
  shapes.push({ kind: 'rect', x: 0, y: 0, w: width, h: height, fill: '#ffffff', role: 'background' });
  text(width / 2, pad, title, 'middle', { scale: 2, role: 'title' });
  series.forEach((s, j) => {
    const y = legendTop + j * lineH;
    const runs = [...new Set(s.values.map((v) => v.runs))].join('/');
    shapes.push({ kind: 'rect', x: plotLeft, y, w: 14, h: FONT.capHeight, fill: PALETTE[j % PALETTE.length], role: 'legend-swatch' });
    text(plotLeft + 20, y, `${s.label} (${runs} run${runs === '1' ? '' : 's'})`, 'start', { role: 'legend' });
  });
  percentAxis(shapes, { pad, plotLeft, plotRight, plotTop, plotBottom }, yOf, opts.yLabel ?? 'Recall / accuracy (mean +/- std over runs)');
  // a value label fits across its bar, or is written upwards above it
  const upright = series.every((s) => s.values.every((v) => textWidth(pct(v.mean)) <= barW - 2));
  series.forEach((s, j) => {
    const color = PALETTE[j % PALETTE.length];
    s.values.forEach((v, g) => {
      const x = plotLeft + g * slot + slot * 0.1 + j * barW;
      const cx = x + barW / 2;
      shapes.push({ kind: 'rect', x, y: yOf(v.mean), w: barW, h: v.mean * plotH, fill: color, role: 'bar' });
      const lo = Math.max(0, v.mean - v.std), hi = Math.min(1, v.mean + v.std);
      const cap = Math.min(8, barW * 0.6) / 2;
      if (v.runs > 1) {
        shapes.push({ kind: 'line', x1: cx, y1: yOf(lo), x2: cx, y2: yOf(hi), stroke: INK, role: 'error-bar' });
        for (const e of [lo, hi]) shapes.push({ kind: 'line', x1: cx - cap, y1: yOf(e), x2: cx + cap, y2: yOf(e), stroke: INK, role: 'error-cap' });
      }
      const top = yOf(v.runs > 1 ? hi : v.mean) - 3;
      if (upright) text(cx, top - FONT.height, pct(v.mean), 'middle', { role: 'value' });
      else text(cx - FONT.capHeight / 2, top, pct(v.mean), 'start', { vertical: true, role: 'value' });
    });
  });
  shapes.push({ kind: 'line', x1: plotLeft, y1: plotTop, x2: plotLeft, y2: plotBottom, stroke: INK });
  shapes.push({ kind: 'line', x1: plotLeft, y1: plotBottom, x2: plotRight, y2: plotBottom, stroke: INK });
  groups.forEach((g, i) => text(plotLeft + (i + 0.5) * slot, plotBottom + 6, g, 'middle', { role: 'group-label' }));
  return { width, height, shapes };
}

/** The bar chart as an SVG document. Throws a RangeError on inconsistent options. */
export function barChartSvg(opts: BarChartOptions): string {
  return toSvg(layoutBarChart(opts));
}

/** The bar chart as an RGBA PNG (the built-in pixel font). */
export function barChartPng(opts: BarChartOptions): Buffer {
  return toRaster(layoutBarChart(opts)).toPng();
}

/**
 * A heat map of one metric over two settings (the paper's table 7, N_D x N_C): a cell per (x, y),
 * shaded from the lowest to the highest mean drawn, with "mean" and "+/- std" written in it.
 */
export interface GridChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Column labels (x) and row labels (y, top to bottom). */
  xs: string[];
  ys: string[];
  /** cells[row][column]; null for a combination without runs. */
  cells: (MeanStd | null)[][];
  /** What the cells hold (the colour key's caption), e.g. 'H-mean %'. */
  metricLabel: string;
  /** Default 720 x 480. */
  width?: number;
  height?: number;
}

/** Light to dark blue at t in [0, 1]. */
function shade(t: number): Color {
  const lo = [0xf0, 0xf4, 0xfa], hi = [0x1f, 0x4e, 0x8c];
  return '#' + lo.map((c, i) => Math.round(c + (hi[i] - c) * t).toString(16).padStart(2, '0')).join('');
}

function layoutGridChart(opts: GridChartOptions): Layout {
  const { title, xs, ys, cells, width = 720, height = 480 } = opts;
  if (xs.length === 0 || ys.length === 0) throw new RangeError('grid chart needs at least one column and one row');
  if (cells.length !== ys.length || cells.some((r) => r.length !== xs.length)) {
    throw new RangeError(`grid chart: cells must be ${ys.length} rows of ${xs.length} (one per y and x label)`);
  }
  cells.forEach((row, i) => row.forEach((v, j) => v && checkMeanStd(v, `cell ${opts.xLabel} ${xs[j]}, ${opts.yLabel} ${ys[i]}`)));
  const present = cells.flat().filter((v): v is MeanStd => v !== null);
  if (present.length === 0) throw new RangeError('grid chart: every cell is empty');
  const lo = Math.min(...present.map((v) => v.mean)), hi = Math.max(...present.map((v) => v.mean));
  const tOf = (m: number) => (hi > lo ? (m - lo) / (hi - lo) : 0.5);
  const shapes: Shape[] = [];
  const text = textAdder(shapes);
  const pad = 12, lineH = FONT.height + 4;
  const rowLabelW = Math.max(...ys.map((y) => textWidth(y)));
  const plotTop = pad + 2 * FONT.height + 16;
  const plotLeft = pad + FONT.height + 8 + rowLabelW + 8;
  const plotRight = width - pad;
  const plotBottom = height - pad - FONT.height - 8 - FONT.height - 8 - lineH - 12;
  const cw = (plotRight - plotLeft) / xs.length, ch = (plotBottom - plotTop) / ys.length;
  if (cw < textWidth('100.00') + 6 || ch < 2 * lineH + 4) throw new RangeError(`chart size ${width}x${height} is too small for ${xs.length}x${ys.length} cells`);
  shapes.push({ kind: 'rect', x: 0, y: 0, w: width, h: height, fill: '#ffffff', role: 'background' });
  text(width / 2, pad, title, 'middle', { scale: 2, role: 'title' });
  cells.forEach((row, i) => row.forEach((v, j) => {
    const x = plotLeft + j * cw, y = plotTop + i * ch;
    const t = v ? tOf(v.mean) : 0;
    shapes.push({ kind: 'rect', x: x + 1, y: y + 1, w: cw - 2, h: ch - 2, fill: v ? shade(t) : '#e0e0e0', role: v ? 'cell' : 'empty-cell' });
    const ink = v && t > 0.55 ? '#ffffff' : INK;
    // the mean at double size where the cell holds it, "+/- std" under it
    const lines = !v ? ['-'] : v.runs > 1 ? [pct(v.mean), `+/- ${pct(v.std)}`] : [pct(v.mean)];
    const big = cw >= textWidth('100.00', 2) + 8 && ch >= 2 * FONT.height + lineH + 12 ? 2 : 1;
    const heights = lines.map((_, k) => (k === 0 ? big * FONT.height + 4 : lineH));
    let top = y + ch / 2 - (heights.reduce((a, b) => a + b, 0) - 4) / 2;
    lines.forEach((l, k) => {
      text(x + cw / 2, top, l, 'middle', { fill: ink, scale: k === 0 ? big : 1, role: k === 0 ? 'cell-value' : 'cell-std' });
      top += heights[k];
    });
  }));
  ys.forEach((l, i) => text(plotLeft - 6, plotTop + (i + 0.5) * ch - FONT.capHeight / 2, l, 'end', { role: 'row-label' }));
  xs.forEach((l, j) => text(plotLeft + (j + 0.5) * cw, plotBottom + 6, l, 'middle', { role: 'column-label' }));
  text((plotLeft + plotRight) / 2, plotBottom + 6 + FONT.height + 6, opts.xLabel, 'middle');
  text(pad, (plotTop + plotBottom) / 2, opts.yLabel, 'middle', { vertical: true });
  // the colour key: lowest to highest mean drawn
  const keyY = height - pad - lineH, keyW = Math.min(240, plotRight - plotLeft), steps = 24;
  const keyX = (plotLeft + plotRight) / 2 - keyW / 2;
  for (let k = 0; k < steps; k++) shapes.push({ kind: 'rect', x: keyX + (k * keyW) / steps, y: keyY, w: keyW / steps + 0.5, h: FONT.capHeight, fill: shade(k / (steps - 1)), role: 'key' });
  text(keyX - 6, keyY, `${opts.metricLabel} ${pct(lo)}`, 'end', { role: 'key-label' });
  text(keyX + keyW + 6, keyY, pct(hi), 'start', { role: 'key-label' });
  return { width, height, shapes };
}

/** The grid chart as an SVG document. Throws a RangeError on inconsistent options. */
export function gridChartSvg(opts: GridChartOptions): string {
  return toSvg(layoutGridChart(opts));
}

/** The grid chart as an RGBA PNG (the built-in pixel font). */
export function gridChartPng(opts: GridChartOptions): Buffer {
  return toRaster(layoutGridChart(opts)).toPng();
}
