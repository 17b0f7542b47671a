#!/usr/bin/env node
// The table of scripts/lift-compare.sh: per method (the run name without -s<seed>), the final row of
// each run (its last evaluation: the model the method ends with), mean and sample std over the runs of
// accuracy, H-mean, G-mean, lowest recall and the many / medium / few groups, as Markdown.
//   node scripts/lift-table.mjs runs-lift/*-s*
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  process.stderr.write('usage: node scripts/lift-table.mjs <run directory>...\n');
  process.exit(2);
}
const groups = new Map();
for (const dir of dirs) {
  const file = join(dir, 'results.json');
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    process.stderr.write(`${file}: ${e.message}\n`);
    process.exit(1);
  }
  if (r.status !== 'complete' || !r.rows?.length) {
    process.stderr.write(`${file}: status ${r.status}, ${r.rows?.length ?? 0} rows: left out\n`);
    continue;
  }
  const method = r.config.name.replace(/-s\d+$/, '');
  if (!groups.has(method)) groups.set(method, []);
  groups.get(method).push(r.rows[r.rows.length - 1]);
}
const cols = [['accuracy', 'accuracy'], ['harmonicMean', 'H-mean'], ['geometricMean', 'G-mean'], ['lowestRecall', 'lowest'], ['many', 'many'], ['medium', 'medium'], ['few', 'few']];
const stat = (v) => {
  const x = v.filter((a) => a !== null && a !== undefined);
  if (x.length === 0) return '-';
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  const sd = x.length > 1 ? Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / (x.length - 1)) : 0;
  return `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
};
const lines = [
  `| method | runs | final row | ${cols.map((c) => `${c[1]} %`).join(' | ')} |`,
  `| --- | --- | --- | ${cols.map(() => '---').join(' | ')} |`,
];
for (const [method, rows] of groups) {
  const labels = [...new Set(rows.map((r) => r.label))];
  lines.push(`| ${method} | ${rows.length} | ${labels.join(' / ')} | ${cols.map(([k]) => stat(rows.map((r) => r[k]))).join(' | ')} |`);
}
process.stdout.write(lines.join('\n') + '\n');
