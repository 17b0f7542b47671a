// Draws the JSON rows of `btm interpolate --json` (saved to a file) as an SVG and a PNG beside it:
//   node scripts/plot-interpolation.mjs rows.json out.svg "title" "x-axis label"
// (`btm interpolate --svg out.svg` draws while it computes; this redraws saved rows.)
import { readFileSync, writeFileSync } from 'node:fs';
import { curveChartPng, curveChartSvg, interpolationSeries } from '../dist/report/chart.js';

const [rowsFile, svg, title = 'Interpolation', xLabel = 'lambda'] = process.argv.slice(2);
if (!rowsFile || !svg) {
  console.error('usage: node scripts/plot-interpolation.mjs rows.json out.svg [title] [x-axis label]');
  process.exit(2);
}
const chart = { title, xLabel, series: interpolationSeries(JSON.parse(readFileSync(rowsFile, 'utf8'))) };
writeFileSync(svg, curveChartSvg(chart));
writeFileSync(svg.replace(/\.svg$/i, '') + '.png', curveChartPng(chart));
