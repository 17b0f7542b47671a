#!/usr/bin/env node
/**
 * btm: the command line. `btm run` runs a pipeline preset (or a config file) with every config key
 * also a flag (`--pretrain.epochs 5`, `--data.imbalanceFactor 50`); `eval`, `merge`, `split`, `info`
 * work on checkpoints and splits.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { saveState, readCheckpoint, type ModelMeta } from './checkpoint.js';
import { formatPeft } from './lift.js';
import { checkCompatible, evaluate, evaluateMultiLabel, loadModel, type Classifier } from './classifier.js';
import { defaultTtaResize } from './tta.js';
import { hasBtmMetadata } from './checkpoint-import.js';
import { ConfigError, DATASETS, isMultiLabelDataset, parseConfig, type Config, type ConfigInput } from './config.js';
import type { ImageSet } from './data/image-set.js';
import { interpolationSweep, mergeFiles } from './merge.js';
import { loadImageSets, loadMultiLabelSets, longTailSplit } from './pipeline/data.js';
import { multiLabelCounts } from './data/multilabel-list.js';
import { formatLabelSetLines } from './sampling/multilabel.js';
import { checkpointInfo, runPipeline } from './pipeline/run.js';
import { deepMerge, METHODS, presetConfig, SIZES, type Method, type Size } from './presets.js';
import { formatRows, formatDuration, ProgressPrinter } from './cli/progress.js';
import { formatConfigKeys } from './cli/config-help.js';
import { formatSplitList } from './sampling/longtail.js';
import { formatPercent, formatTable } from './report/table.js';
import { aggregateRuns, formatAggregate, formatCurves, readRuns, RowSelectionError, selectRows, type EvalSet } from './report/aggregate.js';
import { barChartPng, barChartSvg, curveChartPng, curveChartSvg, gridChartPng, gridChartSvg, interpolationSeries } from './report/chart.js';
import { barChartOf, DEFAULT_BAR_METRICS, gridChartOf, parseMetrics, PlotError } from './report/plot.js';
import { readMetrics } from './pipeline/run-state.js';
import { writeFileAtomic } from './atomic-file.js';
import { defaultKanjiDir, writeKanjiDataset } from './data/kanji.js';
import { setNumThreads, type Device } from './device.js';
import { launchLocal } from './distributed/launcher.js';
import { distFromEnv, parseDistSettings, type DistSettings } from './distributed/settings.js';

/** Options of the CLI itself; every other flag is a config key. */
const OWN = new Set(['_', '$0', 'preset', 'size', 'config', 'resume', 'json', 'quiet', 'help', 'version', 'out', 'checkpoint', 'runs', 'markdown', 'a', 'b', 'steps', 'nproc', 'dist']);

/** A usage error (bad flag, missing argument, unknown choice): printed with a pointer to --help, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Config keys the data-only commands (eval, interpolate, split) use; they refuse other config flags. */
const DATA_KEYS = (key: string) => /^(data|eval)(\.|$)/.test(key) || ['model.device', 'seed', 'threads'].includes(key);

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

/** A --config file: JSON holding an object of config keys; any other content is an error naming the file. */
function readConfigFile(file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const what = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    throw new ConfigError(`${file}: a config file holds a JSON object of config keys ({"pretrain": {"epochs": 5}, ...}), not ${what}`);
  }
  return value as Record<string, unknown>;
}

/** Dotted keys of the config flags given (`pretrain.lr`, `data.synthetic.size`). */
function flagKeys(flags: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(flags).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return v && typeof v === 'object' && !Array.isArray(v) && !/(^|\.)(loss|normalize)$/.test(key) ? flagKeys(v as Record<string, unknown>, key) : [key];
  });
}

/** The effective config: preset (method + size) <- --config file <- flags. */
export function buildConfig(argv: Record<string, unknown>): ConfigInput {
  const extra = (argv._ as unknown[] | undefined)?.slice(1) ?? [];
  if (extra.length) throw new UsageError(`unexpected argument(s): ${extra.join(' ')}`);
  const base = presetConfig((argv.preset as Method) ?? 'btm', (argv.size as Size) ?? 'cpu');
  const file = argv.config ? readConfigFile(argv.config as string) : {};
  return deepMerge(deepMerge(base, file), configFromFlags(argv));
}

/**
 * The config of a data-only command (eval, split, interpolate). Every flag is validated (a typo is an
 * error); flags of keys the command does not use are named on stderr, so the same flags can be
 * passed to run and eval.
 */
function dataConfig(argv: Record<string, unknown>, command: string, extra: string[] = []): Config {
  // these commands run no stage: a multi-label dataset's config is built on the ml-ce preset (BCE losses),
  // not on btm's, whose single-label losses such a dataset refuses
  const input = buildConfig(argv);
  const dataset = (input.data as { dataset?: unknown } | undefined)?.dataset;
  const config = parseConfig(typeof dataset === 'string' && isMultiLabelDataset(dataset) ? buildConfig({ ...argv, preset: 'ml-ce' }) : input);
  const unused = flagKeys(configFromFlags(argv)).filter((k) => !DATA_KEYS(k) && !extra.includes(k));
  if (unused.length) {
    process.stderr.write(`btm ${command}: not used here (it takes --data.*, --eval.*, --model.device, ${extra.map((k) => `--${k}, `).join('')}--seed, --threads): ${unused.map((k) => `--${k}`).join(' ')}\n`);
  }
  if (config.threads) setNumThreads(config.threads);
  return config;
}

/** A checkpoint used on data of another shape or class count is refused, naming both. */
/** A checkpoint that does not fit the data is a usage problem of the command line: say so before any work. */
function checkFits(file: string, meta: ModelMeta, set: ImageSet): void {
  try {
    checkCompatible(meta, set, { checkpoint: file });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

/** --dist.* flags over torchrun's variables (RANK, WORLD_SIZE, ...), or undefined for a plain run. */
function distSettings(argv: Record<string, unknown>): DistSettings | undefined {
  const fromEnv = distFromEnv();
  const flags = (argv.dist ?? {}) as Record<string, unknown>;
  const known = ['backend', 'timeout', 'port', 'syncBatchNorm'];
  const unknown = Object.keys(flags).filter((k) => !known.includes(k));
  if (unknown.length) throw new UsageError(`unknown flag(s): ${unknown.map((k) => `--dist.${k}`).join(', ')} (known: ${known.map((k) => `--dist.${k}`).join(', ')})`);
  if (!fromEnv) return undefined;
  try {
    return parseDistSettings({
      ...fromEnv,
      ...(flags.backend !== undefined ? { backend: flags.backend as 'gloo' | 'nccl' } : {}),
      ...(flags.timeout !== undefined ? { timeoutSeconds: Number(flags.timeout) } : {}),
      ...(flags.syncBatchNorm !== undefined ? { syncBatchNorm: flags.syncBatchNorm as boolean } : {}),
    });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

async function cmdRun(argv: Record<string, unknown>): Promise<number> {
  const json = Boolean(argv.json);
  const config = parseConfig(buildConfig(argv));
  if (argv.nproc !== undefined && process.env.WORLD_SIZE === undefined) {
    const nproc = Number(argv.nproc);
    if (!Number.isInteger(nproc) || nproc < 1 || nproc > 1024) throw new UsageError(`--nproc must be an integer in [1, 1024], got ${String(argv.nproc)}`);
    const port = (argv.dist as Record<string, unknown> | undefined)?.port;
    if (port !== undefined && !(Number.isInteger(Number(port)) && Number(port) >= 1 && Number(port) <= 65535)) {
      throw new UsageError(`--dist.port must be an integer in [1, 65535], got ${String(port)}`);
    }
    return launchLocal({ nproc, argv: [process.argv[1], ...withoutNproc(process.argv.slice(2))], port: port === undefined ? undefined : Number(port) });
  }
  const distributed = distSettings(argv);
  // the ranks other than 0 print no progress (their errors still go to stderr)
  const printer = new ProgressPrinter(process.stderr, json || Boolean(argv.quiet) || (distributed?.rank ?? 0) > 0);
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
    const result = await runPipeline(config, { signal: controller.signal, onProgress: printer.handle, resume: Boolean(argv.resume), distributed });
    printer.finish();
    if ((distributed?.rank ?? 0) > 0) return result.status === 'complete' ? 0 : 130;
    if (json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    } else {
      process.stdout.write(`\n${formatRows(result.rows)}\n\n`);
      process.stdout.write(`${result.status} in ${formatDuration((performance.now() - t0) / 1000)}; run directory ${result.dir}` +
        (result.checkpoint ? `; final model ${result.checkpoint}` : '') + '\n');
    }
    return result.status === 'complete' ? 0 : 130;
  } finally {
    printer.finish();
    process.off('SIGINT', onSigint);
  }
}

/** The command line without --nproc (and its value): what each rank runs. */
function withoutNproc(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nproc') i++;
    else if (!args[i].startsWith('--nproc=')) out.push(args[i]);
  }
  return out;
}

async function cmdEval(argv: Record<string, unknown>): Promise<number> {
  // --model.initFormat, and for a plain torchvision / timm state dict --model.arch: how the file is read
  const plain = !hasBtmMetadata(argv.checkpoint as string);
  const config = dataConfig(argv, 'eval', ['model.initFormat', ...(plain ? ['model.arch'] : [])]);
  if (isMultiLabelDataset(config.data.dataset)) return evalMultiLabel(argv, config);
  const { train, test } = await loadImageSets(config.data, config.seed);
  const { counts } = longTailSplit(config.data, train);
  const classifier = await loadEvalModel(argv, config, test);
  try {
    const s = await evaluate(classifier, test, {
      trainCounts: counts, manyThreshold: config.eval.manyThreshold, fewThreshold: config.eval.fewThreshold, batchSize: config.eval.batchSize,
      tta: config.eval.tta, ttaResize: config.eval.ttaResize,
    });
    if (argv.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    } else {
      const names = test.classNames ?? s.perClassRecall.map((_, c) => String(c));
      process.stdout.write(formatTable(
        [{ key: 'cls', header: 'class', align: 'left' }, { key: 'n', header: 'train images' }, { key: 'recall', header: 'recall', format: (v) => formatPercent(v) }],
        names.map((cls, c) => ({ cls, n: counts[c], recall: s.perClassRecall[c] })),
      ) + '\n\n');
      if (config.eval.tta !== 'none') process.stdout.write(`five-crop test-time ensemble: crops of ${classifier.meta.imageSize}x${classifier.meta.imageSize} from images upscaled to ${config.eval.ttaResize ?? defaultTtaResize(classifier.meta.imageSize)}, logits averaged\n`);
      process.stdout.write(`accuracy ${formatPercent(s.accuracy)}  H-mean ${formatPercent(s.harmonicMean)}  G-mean ${formatPercent(s.geometricMean)}  ` +
        `lowest ${formatPercent(s.lowestRecall)}  many ${formatPercent(s.many?.recall)}  medium ${formatPercent(s.medium?.recall)}  few ${formatPercent(s.few?.recall)}\n`);
    }
    return 0;
  } finally {
    classifier.dispose();
  }
}

/** The checkpoint of `btm eval` (a btm-node checkpoint, or a plain state dict read as --model.arch), for data of this shape. */
async function loadEvalModel(argv: Record<string, unknown>, config: Config, test: ImageSet): Promise<Classifier> {
  // a plain torchvision / timm state dict (no btm-node metadata) is read as --model.arch, normalised as an explicit --data.normalize
  const norm = typeof config.data.normalize === 'object' ? config.data.normalize : undefined;
  const classifier = await loadModel(argv.checkpoint as string, {
    device: config.model.device as Device, format: config.model.initFormat, arch: config.model.arch, imageSize: test.height, inChannels: test.channels,
    ...(norm ? { normalize: norm } : {}),
  });
  try {
    checkFits(argv.checkpoint as string, classifier.meta, test);
  } catch (e) {
    classifier.dispose();
    throw e;
  }
  return classifier;
}

/**
 * `btm eval` on a multi-label dataset (mosaic, multilabel-list): per-class AP on the test set, its mean
 * (mAP), harmonic and geometric means and minimum, many / medium / few mAP by the training images
 * containing each class, and the top-1 hit rate: the metrics of a multi-label run's rows.
 */
async function evalMultiLabel(argv: Record<string, unknown>, config: Config): Promise<number> {
  const { train, test, multiLabel } = await loadMultiLabelSets(config.data);
  const counts = multiLabelCounts(multiLabel.trainSets, train.numClasses);
  const classifier = await loadEvalModel(argv, config, test);
  try {
    const s = await evaluateMultiLabel(classifier, test, multiLabel.testTargets, {
      trainCounts: counts, manyThreshold: config.eval.manyThreshold, fewThreshold: config.eval.fewThreshold, batchSize: config.eval.batchSize,
      tta: config.eval.tta, ttaResize: config.eval.ttaResize,
    });
    if (argv.json) {
      // NaN (a class without a test positive) is written as null
      process.stdout.write(JSON.stringify(s, (_, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2) + '\n');
    } else {
      const names = test.classNames ?? s.perClassAP.map((_, c) => String(c));
      const testCounts = multiLabelCounts(multiLabel.testSets, test.numClasses);
      process.stdout.write(formatTable(
        [{ key: 'cls', header: 'class', align: 'left' }, { key: 'n', header: 'train images' }, { key: 't', header: 'test positives' }, { key: 'ap', header: 'AP', format: (v) => formatPercent(v) }],
        names.map((cls, c) => ({ cls, n: counts[c], t: testCounts[c], ap: s.perClassAP[c] })),
      ) + '\n\n');
      if (config.eval.tta !== 'none') process.stdout.write(`five-crop test-time ensemble: crops of ${classifier.meta.imageSize}x${classifier.meta.imageSize} from images upscaled to ${config.eval.ttaResize ?? defaultTtaResize(classifier.meta.imageSize)}, logits averaged\n`);
      process.stdout.write(`mAP ${formatPercent(s.mAP)}  H-AP ${formatPercent(s.harmonicMean)}  G-AP ${formatPercent(s.geometricMean)}  ` +
        `min AP ${formatPercent(s.lowestAP)}  many ${formatPercent(s.many?.mAP)}  medium ${formatPercent(s.medium?.mAP)}  few ${formatPercent(s.few?.mAP)}  ` +
        `top-1 hit ${formatPercent(s.topHitRate)}\n`);
    }
    return 0;
  } finally {
    classifier.dispose();
  }
}

/** --weights: one finite number >= 0 per checkpoint, not all zero. */
export function parseWeights(text: string, count: number): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const weights = parts.map(Number);
  const bad = parts.filter((p, i) => p === '' || !Number.isFinite(weights[i]) || weights[i] < 0);
  if (bad.length) throw new UsageError(`--weights: each weight must be a finite number >= 0, got ${bad.map((b) => `'${b}'`).join(', ')} in '${text}'`);
  if (weights.length !== count) throw new UsageError(`--weights: ${weights.length} weight(s) for ${count} checkpoint(s)`);
  if (weights.every((w) => w === 0)) throw new UsageError(`--weights: the weights are all zero`);
  return weights;
}

async function cmdMerge(argv: Record<string, unknown>): Promise<number> {
  const files = argv.checkpoints as string[];
  const weights = argv.weights !== undefined ? parseWeights(String(argv.weights), files.length) : undefined;
  const merged = await mergeFiles(files, { weights });
  const { meta } = await readCheckpoint(files[0]);
  await saveState(argv.out as string, merged, meta, { stage: 'merge', members: files.join(','), ...(weights ? { weights: weights.join(',') } : {}) });
  process.stdout.write(`merged ${files.length} checkpoints into ${argv.out}\n`);
  return 0;
}

async function cmdSplit(argv: Record<string, unknown>): Promise<number> {
  const config = dataConfig(argv, 'split');
  if (isMultiLabelDataset(config.data.dataset)) {
    // no split: a multi-label run trains on its whole (generated or listed) training set; this lists it
    const { train, multiLabel } = await loadMultiLabelSets(config.data);
    const counts = multiLabelCounts(multiLabel.trainSets, train.numClasses);
    const all = Int32Array.from({ length: train.n }, (_, i) => i);
    await writeFileAtomic(argv.out as string,
      `# btm-split multi-label dataset=${config.data.dataset} dataset_size=${train.n} num_classes=${train.numClasses} samples=${train.n}` +
      ` (the whole training set: multi-label runs take no split file; lines: <index><TAB><labels>)\n` + formatLabelSetLines(all, multiLabel.trainSets));
    process.stdout.write(`${train.n} images (the whole training set: a multi-label run takes no split), images containing each class: ${counts.join(' ')} -> ${argv.out}\n`);
    return 0;
  }
  const { train } = await loadImageSets(config.data, config.seed);
  const { split, counts } = longTailSplit(config.data, train);
  await writeFileAtomic(argv.out as string, formatSplitList(split, train.labels, {
    numClasses: train.numClasses, seed: config.data.splitSeed, profile: config.data.profile, imbalanceFactor: config.data.imbalanceFactor,
  }));
  process.stdout.write(`${split.length} images, per class: ${counts.join(' ')} -> ${argv.out}\n`);
  return 0;
}

async function cmdData(argv: Record<string, unknown>): Promise<number> {
  const options = {
    numClasses: argv.numClasses as number | undefined, trainPerClass: argv.trainPerClass as number | undefined,
    testPerClass: argv.testPerClass as number | undefined, size: argv.imageSize as number | undefined, seed: argv.seed as number | undefined,
  };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && !Number.isInteger(v)) throw new UsageError(`--${k === 'size' ? 'imageSize' : k} must be an integer, got ${v}`);
  }
  const out = (argv.out as string | undefined) ?? defaultKanjiDir(options);
  const started = performance.now();
  const set = writeKanjiDataset(out, options);
  process.stdout.write(
    `kanji: ${set.train.numClasses} classes, ${set.train.n} training and ${set.test.n} test images of ` +
      `${set.train.height}x${set.train.width} in ${((performance.now() - started) / 1000).toFixed(1)} s -> ${out}\n` +
      `use it with: btm run --data.dataset kanji --data.dir ${out}` +
      Object.entries(options).filter(([, v]) => v !== undefined).map(([k, v]) => ` --data.kanji.${k} ${v}`).join('') + '\n',
  );
  return 0;
}

async function cmdInterpolate(argv: Record<string, unknown>): Promise<number> {
  const steps = Number(argv.steps);
  if (!Number.isInteger(steps) || steps < 2) throw new UsageError(`--steps must be an integer >= 2, got ${argv.steps}`);
  const config = dataConfig(argv, 'interpolate');
  if (isMultiLabelDataset(config.data.dataset)) {
    throw new ConfigError(`dataset '${config.data.dataset}' is multi-label; btm interpolate scores per-class recall of one label per image (btm eval takes multi-label data)`);
  }
  const { train, test } = await loadImageSets(config.data, config.seed);
  const { counts } = longTailSplit(config.data, train);
  const [a, b] = await Promise.all([readCheckpoint(argv.a as string), readCheckpoint(argv.b as string)]);
  checkFits(argv.a as string, a.meta, test);
  checkFits(argv.b as string, b.meta, test);
  const classifier = await loadModel(argv.a as string, { device: config.model.device as Device });
  try {
    const rows: Record<string, unknown>[] = [];
    const lambdas = Array.from({ length: steps }, (_, i) => i / (steps - 1));
    await interpolationSweep(a.state, b.state, lambdas, async (state) => {
      classifier.model.loadStateDict(state);
      const s = await evaluate(classifier, test, { trainCounts: counts });
      rows.push({ lambda: lambdas[rows.length], acc: s.accuracy, h: s.harmonicMean, g: s.geometricMean, low: s.lowestRecall });
      return s.harmonicMean;
    });
    if (argv.svg !== undefined) {
      const svg = String(argv.svg);
      const chart = {
        title: String(argv.title ?? 'Interpolation (1 - lambda) a + lambda b'),
        xLabel: `lambda (0: ${basename(String(argv.a))}, 1: ${basename(String(argv.b))})`,
        series: interpolationSeries(rows as { lambda: number; acc: number; h: number; g: number; low: number }[]),
      };
      await writeFileAtomic(svg, curveChartSvg(chart));
      await writeFileAtomic(svg.replace(/\.svg$/i, '') + '.png', curveChartPng(chart));
    }
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
  const dirs = argv.runs as string[];
  if (argv.curves) {
    const runs = dirs.map((dir) => ({ dir, ...readMetrics(dir) }));
    if (argv.json) {
      process.stdout.write(JSON.stringify(runs.map(({ dir, records }) => ({ dir, records })), null, 2) + '\n');
    } else {
      process.stdout.write(runs.map(({ dir, records, skipped }) =>
        `== ${dir}\n${formatCurves(records)}${skipped ? `\n(${skipped} unreadable line(s) of metrics.jsonl skipped)` : ''}`).join('\n\n') + '\n');
    }
    return 0;
  }
  const rows = selectRows(aggregateRuns(readRuns(dirs), argv.set as EvalSet), argv.rows as string | undefined);
  process.stdout.write((argv.json ? JSON.stringify(rows, null, 2) : formatAggregate(rows, Boolean(argv.markdown))) + '\n');
  return 0;
}

/** `btm plot bars|grid <runs..> --out X.svg`: the runs' aggregated rows as a chart, X.svg and X.png. */
async function cmdPlot(argv: Record<string, unknown>): Promise<number> {
  const out = String(argv.out);
  if (!/\.(svg|png)$/i.test(out)) throw new UsageError(`--out '${out}': name an .svg or .png file (both are written, side by side)`);
  const base = out.replace(/\.(svg|png)$/i, '');
  const dirs = argv.runs as string[];
  const runs = readRuns(dirs);
  runs.forEach((r, i) => {
    const first = runs.findIndex((q) => q.name === r.name);
    if (first !== i) throw new PlotError(`run ${r.name} is given twice (${dirs[first]}, ${dirs[i]}): each seed's run counts once`);
    if (r.rows.length === 0) throw new PlotError(`${dirs[i]} (run ${r.name}): no result rows yet (the run has not evaluated a model)`);
  });
  const set = argv.set as EvalSet;
  const rows = selectRows(aggregateRuns(runs, set), argv.rows as string | undefined);
  const setName = set === 'val' ? 'validation split' : 'test set';
  let svg: string, png: Buffer;
  if (argv.kind === 'bars') {
    const metrics = argv.metrics !== undefined ? parseMetrics(String(argv.metrics)) : DEFAULT_BAR_METRICS;
    const chart = barChartOf(rows, metrics, String(argv.title ?? `Mean +/- std over seeds, ${setName}`));
    [svg, png] = [barChartSvg(chart), barChartPng(chart)];
  } else {
    if (argv.grid === undefined) throw new UsageError(`btm plot grid needs --grid, a regular expression with two groups read from the run names (e.g. 'nd(\\d+)-nc(\\d+)')`);
    const [metric] = parseMetrics(String(argv.metric ?? 'harmonicMean'), '--metric');
    const chart = gridChartOf(rows, String(argv.grid), metric, {
      title: String(argv.title ?? `${metric}, ${setName}`), xLabel: argv.x as string | undefined, yLabel: argv.y as string | undefined,
    });
    [svg, png] = [gridChartSvg(chart), gridChartPng(chart)];
  }
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, png);
  process.stdout.write(`${base}.svg, ${base}.png: ${rows.length} row(s) of ${runs.length} run(s), ${setName}\n`);
  return 0;
}

/** `btm info`: what a checkpoint holds, in words (or --json). */
export function formatInfo(file: string, info: Awaited<ReturnType<typeof checkpointInfo>>): string {
  const { meta, metadata } = info;
  const names = meta.classNames;
  const classes = names?.length
    ? `${meta.numClasses}: ${names.slice(0, 12).join(', ')}${names.length > 12 ? `, ... (${names.length - 12} more)` : ''}`
    : `${meta.numClasses} (no names)`;
  const fmt = (v: number[]) => v.map((x) => x.toFixed(4)).join(', ');
  const norm = meta.normalize ? `mean ${fmt(meta.normalize.mean)}; std ${fmt(meta.normalize.std)} (on the [0,1] scale)` : 'none (raw [0,1] pixels)';
  const stage = metadata.stage
    ? `${metadata.stage}${metadata.step && metadata.step !== metadata.stage ? ` (step ${metadata.step})` : ''}` +
      (metadata.strategy ? `, merge ${metadata.strategy}` : '') + (metadata.members ? `, members ${metadata.members}` : '') +
      (metadata.epoch !== undefined ? `, after epoch ${Number(metadata.epoch) + 1}` : '')
    : 'not recorded';
  const skip = new Set(['model', 'format', 'stage', 'step', 'strategy', 'members', 'epoch']);
  const rest = Object.entries(metadata).filter(([k]) => !skip.has(k));
  const lines: [string, string][] = [
    ['file', file],
    ['architecture', `${meta.arch}, ${info.parameters.toLocaleString('en-US')} parameters in ${info.tensors} tensors`],
    ['input', `${meta.inChannels} channel(s), ${meta.imageSize}x${meta.imageSize} pixels`],
    ['classes', classes],
    ['normalisation', norm],
    ['stage', stage],
    ...(meta.peft ? [['peft', formatPeft(meta.peft)] as [string, string]] : []),
    ...(metadata.format ? [['format', metadata.format] as [string, string]] : []),
    ...rest.map(([k, v]) => [k, String(v)] as [string, string]),
  ];
  return lines.map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n');
}

async function cmdInfo(argv: Record<string, unknown>): Promise<number> {
  const file = argv.checkpoint as string;
  const info = await checkpointInfo(file);
  process.stdout.write((argv.json ? JSON.stringify(info, null, 2) : formatInfo(file, info)) + '\n');
  return 0;
}

async function cmdConfig(argv: Record<string, unknown>): Promise<number> {
  const config = parseConfig(buildConfig(argv));
  if (argv.json) process.stdout.write(JSON.stringify(config, null, 2) + '\n');
  else process.stdout.write(formatConfigKeys(config, undefined, 'value') + '\n');
  return 0;
}

/** The key table of run --help: every key with its default under the default preset and size. */
function keyHelp(keep?: (key: string) => boolean, header = 'default (btm/cpu)'): string {
  return formatConfigKeys(parseConfig(presetConfig('btm', 'cpu')), keep, header);
}

/** `--rows` and `--set`, shared by `btm report` and `btm plot`: which aggregated rows, of which evaluation. */
const rowSelectionOptions = <T>(y: Argv<T>) =>
  y.option('rows', { type: 'string', describe: "only the rows whose model label matches this regular expression (e.g. '^(?!BTM fine-tune #)')" })
    .option('set', { type: 'string', choices: ['test', 'val'], default: 'test', describe: 'the metrics of the test set, or of the validation split (runs with --data.valPerClass)' });
const presetOptions = (y: Argv) =>
  y
    .option('preset', { choices: METHODS, default: 'btm', describe: 'method: pipeline and post-training recipe' })
    .option('size', { choices: SIZES, default: 'cpu', describe: "schedule: 'cpu' (Fashion-MNIST-LT, about 6.5 min on 2 idle cores) or 'paper'" });

const fileOptions = (y: Argv) =>
  y
    .option('config', { type: 'string', describe: 'JSON config file: an object of config keys (overrides the preset; flags override it)' })
    .option('json', { type: 'boolean', describe: 'machine-readable output on stdout, no progress' });

const dataEpilog = (command: string) =>
  `Data flags (other config flags are validated but not used by btm ${command}, which says so):\n` + keyHelp(DATA_KEYS, 'default');

export async function main(args: string[]): Promise<number> {
  let code = 0;
  const wrap = (fn: (a: Record<string, unknown>) => Promise<number>) => async (a: Record<string, unknown>) => {
    code = await fn(a);
  };
  await yargs(args)
    .scriptName('btm')
    .parserConfiguration({ 'camel-case-expansion': false, 'strip-aliased': true })
    .command('run', 'run a pipeline: pretrain -> [fc] -> btm -> posttrain (default preset btm)', (y) =>
      fileOptions(presetOptions(y))
        .option('name', { type: 'string', describe: 'run name (directory <runDir>/<name>)' })
        .option('resume', { type: 'boolean', describe: 'continue the run in <runDir>/<name> from its last finished epoch; same flags as its first start ' +
          '(only settings of stages not started yet may change)' })
        .option('quiet', { type: 'boolean', describe: 'no progress output' })
        .option('nproc', { type: 'number', describe: 'start N ranks on this machine (c10d: Gloo on CPU, NCCL on CUDA) and supervise them; ' +
          'under torchrun / Slurm, set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT instead' })
        .option('dist.backend', { choices: ['gloo', 'nccl'], describe: 'distributed backend (default: gloo on CPU, nccl on CUDA)' })
        .option('dist.port', { type: 'number', describe: 'with --nproc: the rendezvous port (default: a free one)' })
        .option('dist.timeout', { type: 'number', describe: 'seconds a rendezvous or a collective waits for the other ranks (default 1800)' })
        .option('dist.syncBatchNorm', { type: 'boolean', describe: 'data-parallel BatchNorm in train mode over the global batch (SyncBatchNorm; default true); ' +
          '--no-dist.syncBatchNorm: each rank\'s part' })
        .epilog(`Every config key is also a flag (a JSON value for a loss: --posttrain.loss '{"type":"las"}'); btm config shows the values a ` +
          `preset and flags give. Datasets: ${DATASETS.join(', ')}.\n\n` + keyHelp()), wrap(cmdRun))
    .command('eval <checkpoint>', "evaluate a checkpoint on the configured dataset's test set (per-class recall; per-class AP on a multi-label dataset)", (y) =>
      fileOptions(y).positional('checkpoint', { type: 'string', demandOption: true, describe: 'a btm-node .safetensors checkpoint' })
        .epilog(dataEpilog('eval')), wrap(cmdEval))
    .command('merge <checkpoints..>', 'average checkpoints (streaming, one in memory at a time)', (y) =>
      y.positional('checkpoints', { type: 'string', array: true, demandOption: true })
        .option('out', { type: 'string', demandOption: true, describe: 'output .safetensors' })
        .option('weights', { type: 'string', describe: 'comma-separated weights, one per checkpoint, finite and >= 0, not all 0 (default uniform)' })
        .strict(), wrap(cmdMerge))
    .command('split', 'write a long-tailed split list of the configured dataset (multi-label: its whole training set with label sets)', (y) =>
      fileOptions(y).option('out', { type: 'string', demandOption: true, describe: 'output list file' }).epilog(dataEpilog('split')), wrap(cmdSplit))
    .command('interpolate <a> <b>', '(1 - lambda) a + lambda b for lambda in [0, 1], each evaluated on the test set (figures 1-2)', (y) =>
      fileOptions(y).positional('a', { type: 'string', demandOption: true }).positional('b', { type: 'string', demandOption: true })
        .option('steps', { type: 'number', default: 11, describe: 'number of lambdas, evenly spaced' })
        .option('svg', { type: 'string', describe: 'also draw the curves (accuracy, H-mean, G-mean, lowest recall against lambda) to this SVG and a PNG beside it' })
        .option('title', { type: 'string', describe: 'the chart title (with --svg)' }).epilog(dataEpilog('interpolate')), wrap(cmdInterpolate))
    .command('data <kind>', 'generate a dataset: kanji, a many-class set drawn from real kanji stroke data (python3-kanjidraw)', (y) =>
      y.positional('kind', { type: 'string', choices: ['kanji'], demandOption: true })
        .option('out', { type: 'string', describe: 'output directory (default: ~/.cache/btm-node/kanji-..., where --data.dataset kanji looks)' })
        .option('numClasses', { type: 'number', describe: 'classes (distinct kanji), 2-6394 (default 300)' })
        .option('trainPerClass', { type: 'number', describe: 'training images per class (default 300)' })
        .option('testPerClass', { type: 'number', describe: 'test images per class (default 30)' })
        .option('imageSize', { type: 'number', describe: 'side of the square images (default 32)' })
        .option('seed', { type: 'number', describe: 'seed of the class choice and of every image (default 0)' })
        .strict(), wrap(cmdData))
    .command('report <runs..>', 'mean and spread of every row over runs named <method>-s<seed> (results.json); --curves: per-epoch metrics (metrics.jsonl)', (y) =>
      rowSelectionOptions(y.positional('runs', { type: 'string', array: true, demandOption: true, describe: 'run directories' }))
        .option('curves', { type: 'boolean', describe: "each run's metrics.jsonl: a row per epoch (lr, loss, train accuracy, images/s) and per evaluation" })
        .option('markdown', { type: 'boolean', describe: 'a Markdown table' })
        .option('json', { type: 'boolean' })
        .strict(), wrap(cmdReport))
    .command('plot <kind> <runs..>', "draw runs' rows as SVG + PNG: bars (each method's metrics, mean and error bar +/- std over seeds) or grid (one metric over two settings read from the run names)", (y) =>
      rowSelectionOptions(y.positional('kind', { type: 'string', choices: ['bars', 'grid'], demandOption: true })
        .positional('runs', { type: 'string', array: true, demandOption: true, describe: 'run directories, named <method>-s<seed>' }))
        .option('out', { type: 'string', demandOption: true, describe: 'output .svg (a .png is written beside it; or name the .png)' })
        .option('metrics', { type: 'string', describe: 'bars: comma-separated, of harmonicMean, geometricMean, lowestRecall, accuracy, arithmeticMean, many, medium, few (default the first four)' })
        .option('metric', { type: 'string', describe: 'grid: the metric in the cells (default harmonicMean)' })
        .option('grid', { type: 'string', describe: "grid: a regular expression over the run names without -s<seed>, its two groups x then y (e.g. 'nd(\\d+)-nc(\\d+)')" })
        .option('x', { type: 'string', describe: 'grid: the x axis title' })
        .option('y', { type: 'string', describe: 'grid: the y axis title' })
        .option('title', { type: 'string', describe: 'the chart title' })
        .strict(), wrap(cmdPlot))
    .command('info <checkpoint>', 'show a checkpoint: architecture, classes, normalisation, stage, metadata', (y) =>
      y.positional('checkpoint', { type: 'string', demandOption: true }).option('json', { type: 'boolean' }).strict(), wrap(cmdInfo))
    .command('config', 'every config key: what it accepts and its value for the preset, size, config file and flags given (--json: the config)', (y) =>
      fileOptions(presetOptions(y)), wrap(cmdConfig))
    .command('doctor', 'check the install: the libtorch the addon was built against and runs with, CUDA, devices; each problem with its fix', (y) =>
      y.option('json', { type: 'boolean', describe: 'the report as JSON' }).strict(), wrap(async (a) => {
      const { doctor, formatDoctor } = await import('./doctor.js');
      const report = doctor();
      process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
      return report.problems.length > 0 ? 1 : 0;
    }))
    .demandCommand(1, 'name a command: run, eval, merge, interpolate, split, data, report, plot, info, config or doctor')
    .strictCommands()
    .fail((msg, err) => {
      // a usage error stops here: the command does not run
      throw err ?? new UsageError(msg);
    })
    .help()
    .wrap(null)
    .parseAsync();
  return code;
}

main(hideBin(process.argv)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error;
    if (e instanceof UsageError || e instanceof PlotError || e instanceof RowSelectionError) {
      process.stderr.write(`btm: ${e.message}\n\nRun btm --help (or btm <command> --help) for usage.\n`);
      process.exit(2);
    }
    process.stderr.write(`btm: ${process.env.BTM_DEBUG ? (e.stack ?? String(e)) : (e.message ?? String(e))}\n`);
    process.exit(e instanceof ConfigError ? 2 : 1);
  },
);
