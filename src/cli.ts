#!/usr/bin/env node
/**
 * btm: the command line. `btm run` runs a pipeline preset (or a config file) with every config key
 * also a flag (`--pretrain.epochs 5`, `--data.imbalanceFactor 50`); `eval`, `merge`, `split`, `info`
 * work on checkpoints and splits.
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { saveState, readCheckpoint } from './checkpoint.js';
import { evaluate, loadModel } from './classifier.js';
import { ConfigError, DATASETS, parseConfig, type ConfigInput } from './config.js';
import { interpolationSweep, mergeFiles } from './merge.js';
import { loadImageSets, longTailSplit } from './pipeline/data.js';
import { checkpointInfo, runPipeline } from './pipeline/run.js';
import { deepMerge, METHODS, presetConfig, SIZES, type Method, type Size } from './presets.js';
import { formatRows, formatDuration, ProgressPrinter } from './cli/progress.js';
import { formatSplitList } from './sampling/longtail.js';
import { formatPercent, formatTable } from './report/table.js';
import { aggregateRuns, formatAggregate, readRuns } from './report/aggregate.js';
import { writeFileAtomic } from './atomic-file.js';
import type { Device } from './device.js';

/** Options of the CLI itself; every other flag is a config key. */
const OWN = new Set(['_', '$0', 'preset', 'size', 'config', 'resume', 'json', 'quiet', 'help', 'version', 'out', 'checkpoint', 'runs', 'markdown', 'a', 'b', 'steps']);

/** Values from flags: 'true'/'false' become booleans, JSON arrays/objects are parsed. */
function flagValue(v: unknown): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (typeof v === 'string' && /^[[{]/.test(v.trim())) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, flagValue(x)]));
  return v;
}

function configFromFlags(argv: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(argv).filter(([k]) => !OWN.has(k)).map(([k, v]) => [k, flagValue(v)]));
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message}`);
  }
}

/** The effective config: preset (method + size) <- --config file <- flags. */
export function buildConfig(argv: Record<string, unknown>): ConfigInput {
  const base = presetConfig((argv.preset as Method) ?? 'btm', (argv.size as Size) ?? 'cpu');
  const file = argv.config ? readJson(argv.config as string) : {};
  return deepMerge(deepMerge(base, file), configFromFlags(argv));
}

async function cmdRun(argv: Record<string, unknown>): Promise<number> {
  const json = Boolean(argv.json);
  const printer = new ProgressPrinter(process.stderr, json || Boolean(argv.quiet));
  const config = parseConfig(buildConfig(argv));
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort();
    process.stderr.write('\nstopping after the current step (Ctrl-C again to quit at once)...\n');
  };
  process.on('SIGINT', onSigint);
  const t0 = performance.now();
  try {
    const result = await runPipeline(config, { signal: controller.signal, onProgress: printer.handle, resume: Boolean(argv.resume) });
    if (json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    } else {
      process.stdout.write(`\n${formatRows(result.rows)}\n\n`);
      process.stdout.write(`${result.status} in ${formatDuration((performance.now() - t0) / 1000)}; run directory ${result.dir}` +
        (result.checkpoint ? `; final model ${result.checkpoint}` : '') + '\n');
    }
    return result.status === 'complete' ? 0 : 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function cmdEval(argv: Record<string, unknown>): Promise<number> {
  const config = parseConfig(buildConfig(argv));
  const classifier = await loadModel(argv.checkpoint as string, { device: config.model.device as Device });
  try {
    const { train, test } = await loadImageSets(config.data, config.seed);
    const { counts } = longTailSplit(config.data, train);
    const s = await evaluate(classifier, test, { trainCounts: counts, manyThreshold: config.eval.manyThreshold, fewThreshold: config.eval.fewThreshold });
    if (argv.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    } else {
      const names = test.classNames ?? s.perClassRecall.map((_, c) => String(c));
      process.stdout.write(formatTable(
        [{ key: 'cls', header: 'class', align: 'left' }, { key: 'n', header: 'train images' }, { key: 'recall', header: 'recall', format: (v) => formatPercent(v) }],
        names.map((cls, c) => ({ cls, n: counts[c], recall: s.perClassRecall[c] })),
      ) + '\n\n');
      process.stdout.write(`accuracy ${formatPercent(s.accuracy)}  H-mean ${formatPercent(s.harmonicMean)}  G-mean ${formatPercent(s.geometricMean)}  ` +
        `lowest ${formatPercent(s.lowestRecall)}  many ${formatPercent(s.many?.recall)}  medium ${formatPercent(s.medium?.recall)}  few ${formatPercent(s.few?.recall)}\n`);
    }
    return 0;
  } finally {
    classifier.dispose();
  }
}

async function cmdMerge(argv: Record<string, unknown>): Promise<number> {
  const files = argv.checkpoints as string[];
  const weights = argv.weights ? String(argv.weights).split(',').map(Number) : undefined;
  const merged = await mergeFiles(files, { weights });
  const { meta } = await readCheckpoint(files[0]);
  await saveState(argv.out as string, merged, meta, { stage: 'merge', members: files.join(',') });
  process.stdout.write(`merged ${files.length} checkpoints into ${argv.out}\n`);
  return 0;
}

async function cmdSplit(argv: Record<string, unknown>): Promise<number> {
  const config = parseConfig(buildConfig(argv));
  const { train } = await loadImageSets(config.data, config.seed);
  const { split, counts } = longTailSplit(config.data, train);
  await writeFileAtomic(argv.out as string, formatSplitList(split, train.labels, {
    numClasses: train.numClasses, seed: config.data.splitSeed, profile: config.data.profile, imbalanceFactor: config.data.imbalanceFactor,
  }));
  process.stdout.write(`${split.length} images, per class: ${counts.join(' ')} -> ${argv.out}\n`);
  return 0;
}

async function cmdInterpolate(argv: Record<string, unknown>): Promise<number> {
  const config = parseConfig(buildConfig(argv));
  const steps = Number(argv.steps);
  if (!Number.isInteger(steps) || steps < 2) throw new ConfigError(`--steps must be an integer >= 2, got ${argv.steps}`);
  const [a, b] = await Promise.all([readCheckpoint(argv.a as string), readCheckpoint(argv.b as string)]);
  const classifier = await loadModel(argv.a as string, { device: config.model.device as Device });
  try {
    const { train, test } = await loadImageSets(config.data, config.seed);
    const { counts } = longTailSplit(config.data, train);
    const rows: Record<string, unknown>[] = [];
    const lambdas = Array.from({ length: steps }, (_, i) => i / (steps - 1));
    await interpolationSweep(a.state, b.state, lambdas, async (state) => {
      classifier.model.loadStateDict(state);
      const s = await evaluate(classifier, test, { trainCounts: counts });
      rows.push({ lambda: lambdas[rows.length], acc: s.accuracy, h: s.harmonicMean, g: s.geometricMean, low: s.lowestRecall });
      return s.harmonicMean;
    });
    if (argv.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else {
      const p = (v: unknown) => formatPercent(v as number);
      process.stdout.write(formatTable([
        { key: 'lambda', header: 'lambda', format: (v) => (v as number).toFixed(2) },
        { key: 'acc', header: 'acc', format: p }, { key: 'h', header: 'H-mean', format: p },
        { key: 'g', header: 'G-mean', format: p }, { key: 'low', header: 'lowest', format: p },
      ], rows) + '\n');
    }
    return 0;
  } finally {
    classifier.dispose();
  }
}

async function cmdReport(argv: Record<string, unknown>): Promise<number> {
  const rows = aggregateRuns(readRuns(argv.runs as string[]));
  process.stdout.write((argv.json ? JSON.stringify(rows, null, 2) : formatAggregate(rows, Boolean(argv.markdown))) + '\n');
  return 0;
}

async function cmdInfo(argv: Record<string, unknown>): Promise<number> {
  const info = await checkpointInfo(argv.checkpoint as string);
  process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  return 0;
}

const configOptions = (y: Argv) =>
  y
    .option('preset', { choices: METHODS, default: 'btm', describe: 'method: pipeline and post-training recipe' })
    .option('size', { choices: SIZES, default: 'cpu', describe: "schedule: 'cpu' (Fashion-MNIST-LT, about 6.5 min on 2 idle cores) or 'paper'" })
    .option('config', { type: 'string', describe: 'JSON config file (overrides the preset; flags override it)' })
    .option('json', { type: 'boolean', describe: 'machine-readable output on stdout, no progress' })
    .epilog(`Every config key is also a flag, e.g. --data.dataset ${DATASETS.join('|')} --data.imbalanceFactor 50 ` +
      '--model.arch resnet32 --pretrain.epochs 10 --btm.numSubsets 5 --btm.merge greedy-hmean --posttrain.loss \'{"type":"las"}\'');

export async function main(args: string[]): Promise<number> {
  let code = 0;
  const wrap = (fn: (a: Record<string, unknown>) => Promise<number>) => async (a: Record<string, unknown>) => {
    code = await fn(a);
  };
  await yargs(args)
    .scriptName('btm')
    .parserConfiguration({ 'camel-case-expansion': false, 'strip-aliased': true })
    .command('run', 'run a pipeline: pretrain -> [fc] -> btm -> posttrain (default preset btm)', (y) =>
      configOptions(y)
        .option('name', { type: 'string', describe: 'run name (directory <runDir>/<name>)' })
        .option('resume', { type: 'boolean', describe: 'continue the run in <runDir>/<name> from its last finished step' })
        .option('quiet', { type: 'boolean', describe: 'no progress output' }), wrap(cmdRun))
    .command('eval <checkpoint>', "evaluate a checkpoint on the configured dataset's test set", (y) =>
      configOptions(y).positional('checkpoint', { type: 'string', demandOption: true }), wrap(cmdEval))
    .command('merge <checkpoints..>', 'average checkpoints (streaming, one in memory at a time)', (y) =>
      y.positional('checkpoints', { type: 'string', array: true, demandOption: true })
        .option('out', { type: 'string', demandOption: true, describe: 'output .safetensors' })
        .option('weights', { type: 'string', describe: 'comma-separated weights (default uniform)' }), wrap(cmdMerge))
    .command('split', 'write a long-tailed split list of the configured dataset', (y) =>
      configOptions(y).option('out', { type: 'string', demandOption: true, describe: 'output list file' }), wrap(cmdSplit))
    .command('interpolate <a> <b>', '(1 - lambda) a + lambda b for lambda in [0, 1], each evaluated on the test set (figures 1-2)', (y) =>
      configOptions(y).positional('a', { type: 'string', demandOption: true }).positional('b', { type: 'string', demandOption: true })
        .option('steps', { type: 'number', default: 11, describe: 'number of lambdas, evenly spaced' }), wrap(cmdInterpolate))
    .command('report <runs..>', 'mean and spread of every row over runs named <method>-s<seed> (results.json)', (y) =>
      y.positional('runs', { type: 'string', array: true, demandOption: true })
        .option('markdown', { type: 'boolean', describe: 'a Markdown table' })
        .option('json', { type: 'boolean' }), wrap(cmdReport))
    .command('info <checkpoint>', 'show a checkpoint: architecture, classes, tensors, metadata', (y) =>
      y.positional('checkpoint', { type: 'string', demandOption: true }), wrap(cmdInfo))
    .command('doctor', 'check the install: the libtorch the addon was built against and runs with, CUDA, devices; each problem with its fix', (y) =>
      y.option('json', { type: 'boolean', describe: 'the report as JSON' }), wrap(async (a) => {
      const { doctor, formatDoctor } = await import('./doctor.js');
      const report = doctor();
      process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
      return report.problems.length > 0 ? 1 : 0;
    }))
    .demandCommand(1, 'name a command: run, eval, merge, interpolate, split, report or info')
    .strictCommands()
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`${msg}\n\nRun btm --help for usage.\n`);
      code = 2;
    })
    .help()
    .parseAsync();
  return code;
}

main(hideBin(process.argv)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error;
    process.stderr.write(`btm: ${process.env.BTM_DEBUG ? (e.stack ?? String(e)) : (e.message ?? String(e))}\n`);
    process.exit(e instanceof ConfigError ? 2 : 1);
  },
);
