// Reads vitest's JSON report and prints the leg's test count; fails when a test failed, when there
// were no tests, or when a test that must run in this leg was skipped.
//   node .ci/test-summary.mjs REPORT.json --leg NAME [--require-ran FILE[:TITLE-SUBSTRING]]...
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const report = JSON.parse(readFileSync(args[0], 'utf8'));
let leg = '?';
const required = [];
for (let i = 1; i < args.length; i += 2) {
  if (args[i] === '--leg') leg = args[i + 1];
  else if (args[i] === '--require-ran') required.push(args[i + 1]);
  else throw new Error(`test-summary: unknown argument ${args[i]}`);
}
const tests = report.testResults.flatMap((f) => f.assertionResults.map((a) => ({ ...a, file: f.name })));
const count = (s) => tests.filter((t) => t.status === s).length;
const skipped = tests.filter((t) => t.status === 'skipped' || t.status === 'pending' || t.status === 'todo');
console.log(
  `leg ${leg}: ${tests.length} tests in ${report.testResults.length} files: ${count('passed')} passed, ` +
    `${count('failed')} failed, ${skipped.length} skipped`,
);
for (const t of skipped) console.log(`  skipped: ${t.file.replace(/^.*?\/test\//, 'test/')} > ${t.fullName}`);
let bad = tests.length === 0 || count('failed') > 0 || report.success === false;
for (const r of required) {
  const [file, title] = r.split(/:(.*)/s);
  const mine = tests.filter((t) => t.file.endsWith(file) && (!title || t.fullName.includes(title)));
  const ran = mine.filter((t) => t.status === 'passed').length;
  const ok = mine.length > 0 && ran === mine.length;
  console.log(`  must run: ${r}: ${ran} of ${mine.length} passed${ok ? '' : '  <-- NOT RUN OR FAILED'}`);
  if (!ok) bad = true;
}
process.exit(bad ? 1 : 0);
