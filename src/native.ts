/**
 * Loads the native addon: a prebuild from prebuilds/ when one matches this platform and Node ABI,
 * else a source build in build/Release (node-gyp-build's order). Failures become one error that says
 * what went wrong and exactly how to build from source.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, constants as osConstants } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildPrerequisites, findLibtorch, fixCommand, loadedLibtorch, readPrebuildRecord, sameLibtorch,
  sourceBuildCommand, type FoundLibtorch, type PrebuildRecord,
} from './libtorch.js';
import type { StateDict } from './state-dict.js';

/** The package root (this file lives in src/ or dist/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface NativeTrainResult {
  losses: Float32Array;
  accs: Float32Array;
  steps: number;
  samples: number;
  /** Steps the fp16 loss scaler skipped because the gradients were not finite (0 without fp16). */
  skippedSteps?: number;
  /** The fp16 loss scale after the call; null when loss scaling is off. */
  lossScale?: number | null;
}

export interface NativeEvalResult {
  preds: Int32Array;
  logits?: Float32Array;
  features?: Float32Array;
  numClasses: number;
  featureDim: number;
}

export interface NativeModelInfo {
  arch: string;
  numClasses: number;
  inChannels: number;
  imageSize: number;
  device: string;
  featureDim: number;
  numParameters: number;
}

export interface NativeModel {
  stateDict(): StateDict;
  loadStateDict(state: StateDict): void;
  gradients(): StateDict;
  optimizerState(): StateDict;
  loadOptimizerState(state: StateDict): void;
  manualSeed(seed: number): void;
  setOptimizer(options?: object): void;
  setPerformance(options?: object): void;
  setLowRank(options: object): void;
  mergeLowRank(): void;
  setProcessGroup(group: object | null, options?: object): void;
  readonly lowRank: { rank: number; layers: string[] } | null;
  setPeft(options: object): void;
  readonly peft: object | null;
  trainEpoch(dataset: NativeDataset, indices: Int32Array, options: object): Promise<NativeTrainResult>;
  evaluate(dataset: NativeDataset, indices: Int32Array | null, options?: object): Promise<NativeEvalResult>;
  dispose(): void;
  readonly disposed: boolean;
  readonly busy: boolean;
  readonly info: NativeModelInfo;
}

export interface NativeDataset {
  dispose(): void;
  readonly disposed: boolean;
  readonly size: number;
  readonly shape: [number, number, number, number];
  readonly device: string;
  readonly maxLabel: number;
  readonly numTargets: number;
}

export interface NativeBuildInfo {
  torchVersion: string;
  torchOrigin: string;
  hardwareConcurrency: number;
  parallelInfo: string;
  /** The Node-API version the addon was built for. */
  napiVersion: number;
  /** CUDA runtime / cuDNN versions libtorch was built with; null without CUDA. */
  cudaVersion: string | null;
  cudnnVersion: string | null;
  /** A CUDA device is usable now. */
  cudaAvailable: boolean;
  deviceCount: number;
  /** c10d backends compiled in ('gloo', 'nccl'). */
  distBackends: string[];
}

/** A native default and its bounds (defaults.h). */
export interface NativeRange {
  default?: number;
  min: number;
  max: number;
}

/** The native defaults and bounds, from `_defaults()` (test only). */
export interface NativeDefaults {
  momentum: NativeRange;
  weightDecay: NativeRange;
  nesterov: boolean;
  lr: NativeRange;
  trainBatchSize: NativeRange;
  evalBatchSize: NativeRange;
  mixupAlpha: NativeRange;
  gmlPower: NativeRange;
  logitOffset: NativeRange;
  labelSmoothing: NativeRange;
  moreCoefficient: NativeRange;
  cropPadding: NativeRange;
  seed: NativeRange;
  threads: NativeRange;
  numClasses: NativeRange;
  inChannels: NativeRange;
  imageSize: NativeRange;
  lossScale: number;
  lossScaleGrowthInterval: number;
  distTimeoutMs: NativeRange;
  worldSize: NativeRange;
  syncBatchNorm: boolean;
}

export interface NativeAddon {
  Model: new (options: object) => NativeModel;
  Dataset: new (images: Uint8Array, labels: Int32Array | Uint8Array, shape: object) => NativeDataset;
  cudaAvailable(): boolean;
  deviceCount(): number;
  /** `adaptive`: n is the most, lowered before each CPU job by the cores other processes keep busy. */
  setNumThreads(n: number, adaptive?: boolean): void;
  threadsAdaptive(): boolean;
  setCudaDeterministic(on: boolean): void;
  getNumThreads(): number;
  archNames(): string[];
  buildInfo(): NativeBuildInfo;
  /** Test only: the training loss on given logits. */
  _computeLoss(options: object): number;
  _batchTargets(dataset: NativeDataset, indices: Int32Array, options: object): { lam: number; targets: Float32Array }[];
  /** Test only: a MORE step's loss on given logits of the full and the general path. */
  _computeMoreLoss(options: object): { base: number; discrepancy: number; total: number };
  /** Test only: the native defaults and bounds. */
  _defaults(): NativeDefaults;
}

/** How to build from source, with the one command that fixes what is missing. Computed once, on demand. */
let hint: string | undefined;
function buildHint(): string {
  if (hint !== undefined) return hint;
  const lines = [
    'Build the addon from source (needs cmake >= 3.18, a C++17 compiler and libtorch):',
    '  libtorch: apt-get install --no-install-recommends libtorch-dev   (Debian/Ubuntu, CPU)',
    '            or PyTorch for python3 (its libtorch is found through python3 -c "import torch")',
    '            or LIBTORCH=/path/to/libtorch (an unpacked libtorch from pytorch.org)',
  ];
  const missing = buildPrerequisites().filter((p) => !p.ok);
  for (const p of missing) lines.push(`  missing:  ${p.name}: ${p.detail}`);
  const fix = fixCommand(missing, sourceBuildCommand(PACKAGE_ROOT));
  lines.push(fix ? `  then:     ${fix}` : `  then:     ${sourceBuildCommand(PACKAGE_ROOT)}   (after installing what is missing)`);
  hint = lines.join('\n');
  return hint;
}

/** What is known about the libtorch a failed or refused load involved. */
export interface LoadContext {
  /** The addon file that was loaded. */
  file?: string;
  /** The prebuild's record of the libtorch it was built against. */
  record?: PrebuildRecord;
  /** The libtorch found (or loaded) at run time. */
  runtime?: FoundLibtorch;
}

function describeRuntime(rt: FoundLibtorch | undefined): string {
  if (!rt) return 'no libtorch was found on the loader path (LD_LIBRARY_PATH, the RPATH, ldconfig)';
  return `the libtorch here is ${rt.version ?? 'of unknown version'} (${rt.file}, ${rt.how})`;
}

/** Turns a load failure into an actionable message. Exported for tests. */
export function explainLoadError(err: unknown, where: string, context: LoadContext = {}): Error {
  const raw = err instanceof Error ? err.message : String(err);
  const { record, runtime } = context;
  let what: string;
  if (/No native build was found/i.test(raw)) {
    what = `no prebuilt addon matches this machine (${process.platform}-${process.arch}, Node ABI ${process.versions.modules}) and there is no source build in ${where}/build/Release.`;
  } else if (record && (!runtime?.version || !sameLibtorch(record.torchVersion, runtime.version))) {
    what =
      `the prebuilt addon${context.file ? ` ${context.file}` : ''} was built against libtorch ${record.torchVersion} ` +
      `(${record.torchOrigin}${record.builtOn ? `, on ${record.builtOn}` : ''}), but ${describeRuntime(runtime)}. ` +
      'A prebuild only runs with the libtorch it was built against: build from source against this one.';
  } else if (/undefined symbol|symbol lookup error|Symbol not found/i.test(raw)) {
    what =
      'the native addon was built against a different libtorch than the one found at run time ' +
      `(a prebuild is tied to the libtorch it was built with)${runtime ? `; ${describeRuntime(runtime)}` : ''}.`;
  } else if (/lib(torch|c10)[^:]*: cannot open shared object file|Library not loaded|libtorch.*not found/i.test(raw)) {
    what =
      'the native addon needs a libtorch that is not installed here (or not on the loader path); ' +
      `the missing library is named below${runtime ? `; ${describeRuntime(runtime)}` : ''}.`;
  } else if (/invalid ELF header|not a valid Win32|wrong ELF class|file too short/i.test(raw)) {
    what = 'the native addon file is not a loadable library for this machine.';
  } else {
    what = 'the native addon could not be loaded.';
  }
  const e = new Error(`btm-node: ${what}\n  cause: ${raw.split('\n')[0]}\n${buildHint()}`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}

let addon: NativeAddon | undefined;
let loadedFrom: { file: string; record?: PrebuildRecord } | undefined;

/** The addon file native() loads (or loaded) and its prebuild record; throws the explained error. */
export function addonLocation(): { file: string; record?: PrebuildRecord } {
  if (loadedFrom) return loadedFrom;
  const override = process.env.BTM_NODE_ADDON;
  let file: string;
  try {
    if (override && !existsSync(resolvePath(override))) throw new Error(`Cannot find module '${resolvePath(override)}' (named by BTM_NODE_ADDON)`);
    file = override ? resolvePath(override) : createRequire(import.meta.url)('node-gyp-build').path(PACKAGE_ROOT);
  } catch (err) {
    throw explainLoadError(err, override ?? PACKAGE_ROOT);
  }
  return { file, record: readPrebuildRecord(file) };
}

/**
 * The loaded addon (loaded once; BTM_NODE_ADDON=/path/to/file.node overrides the search). It is
 * bound at load time (RTLD_NOW), so a libtorch without a symbol the addon needs fails here, with an
 * explanation, instead of crashing at the first call; a prebuild whose record names another libtorch
 * than the one loaded is refused with both versions named.
 */
export function native(): NativeAddon {
  if (addon) return addon;
  const { file, record } = addonLocation();
  const module = { exports: {} as NativeAddon };
  try {
    process.dlopen(module, file, osConstants.dlopen.RTLD_NOW);
  } catch (err) {
    throw explainLoadError(err, process.env.BTM_NODE_ADDON ?? PACKAGE_ROOT, { file, record, runtime: findLibtorch(record?.torchLibDir) });
  }
  const loaded = module.exports;
  if (record) {
    const runtime = loadedLibtorch();
    if (runtime?.version && !sameLibtorch(record.torchVersion, runtime.version)) {
      throw explainLoadError(new Error(`libtorch ${runtime.version} loaded, prebuild record says ${record.torchVersion}`), PACKAGE_ROOT, {
        file,
        record,
        runtime,
      });
    }
  }
  // libtorch starts with one intra-op thread here; default to the machine's cores, adapted to the load
  // of other processes (BTM_NUM_THREADS fixes a count; BTM_ADAPTIVE_THREADS=0 keeps every core).
  const fromEnv = Number(process.env.BTM_NUM_THREADS);
  const fixed = Number.isInteger(fromEnv) && fromEnv > 0;
  loaded.setNumThreads(fixed ? fromEnv : availableParallelism(), !fixed && process.env.BTM_ADAPTIVE_THREADS !== '0');
  addon = loaded;
  loadedFrom = { file, record };
  return addon;
}
