// The curve chart of `btm interpolate --svg` (figure 1): one polyline with point marks per series.
import { describe, expect, it } from 'vitest';
import { curveChartPng, curveChartSvg, interpolationSeries } from '../src/report/chart.js';

const rows = [0, 0.5, 1].map((lambda) => ({ lambda, acc: 0.8 + 0.1 * lambda, h: 0.5 * lambda, g: 0.6, low: 0 }));

describe('curve chart', () => {
  it('draws every series point and segment, with the legend giving the ends', () => {
    const chart = { title: 'interp', xLabel: 'lambda', series: interpolationSeries(rows) };
    const svg = curveChartSvg(chart);
    expect(svg.match(/class="point"/g)).toHaveLength(4 * 3);
    expect(svg.match(/stroke-width="2"/g)).toHaveLength(4 * 2);
    expect(svg).toContain('accuracy: 80.00% at 0 -&gt; 90.00% at 1');
    expect(svg).toContain('H-mean: 0.00% at 0 -&gt; 50.00% at 1');
    const png = curveChartPng(chart);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(800);
  });

  it('refuses a point outside [0, 1] and an empty series, naming them', () => {
    expect(() => curveChartSvg({ title: 't', xLabel: 'x', series: [{ label: 'acc', points: [{ x: 0, y: 1.5 }] }] })).toThrow('series "acc": point 0 (0, 1.5)');
    expect(() => curveChartSvg({ title: 't', xLabel: 'x', series: [{ label: 'acc', points: [] }] })).toThrow('series "acc" has no points');
  });
});
