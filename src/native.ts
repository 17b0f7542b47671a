/**
 * Loads the native addon: a prebuild from prebuilds/ when one matches this platform and Node ABI,
 * else a source build in build/Release (node-gyp-build's order). Failures become one error that says
 * what went wrong and exactly how to build from source.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { StateDict } from './state-dict.js';

/** The package root (this file lives in src/ or dist/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface NativeTrainResult {
  losses: Float32Array;
  accs: Float32Array;
  steps: number;
  samples: number;
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
  cropPadding: NativeRange;
  seed: NativeRange;
  threads: NativeRange;
  numClasses: NativeRange;
  inChannels: NativeRange;
  imageSize: NativeRange;
  lossScale: number;
  lossScaleGrowthInterval: number;
}

export interface NativeAddon {
  Model: new (options: object) => NativeModel;
  Dataset: new (images: Uint8Array, labels: Int32Array, shape: object) => NativeDataset;
  cudaAvailable(): boolean;
  deviceCount(): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  archNames(): string[];
  buildInfo(): NativeBuildInfo;
  /** Test only: the training loss on given logits. */
  _computeLoss(options: object): number;
  /** Test only: the native defaults and bounds. */
  _defaults(): NativeDefaults;
}

const BUILD_HINT = [
  'Build the addon from source (needs cmake >= 3.18, a C++17 compiler and libtorch):',
  '  libtorch: apt-get install --no-install-recommends libtorch-dev   (Debian/Ubuntu, CPU)',
  '            or PyTorch for python3 (its libtorch is found through python3 -c "import torch")',
  '            or LIBTORCH=/path/to/libtorch (an unpacked libtorch from pytorch.org)',
  `  then:     cd ${PACKAGE_ROOT} && npm run build:native`,
].join('\n');

/** Turns a load failure into an actionable message. Exported for tests. */
export function explainLoadError(err: unknown, where: string): Error {
  const raw = err instanceof Error ? err.message : String(err);
  let what: string;
  if (/No native build was found/i.test(raw)) {
    what = `no prebuilt addon matches this machine (${process.platform}-${process.arch}, Node ABI ${process.versions.modules}) and there is no source build in ${where}/build/Release.`;
  } else if (/undefined symbol|symbol lookup error|Symbol not found/i.test(raw)) {
    what =
      'the native addon was built against a different libtorch than the one found at run time ' +
      '(a prebuild is tied to the libtorch it was built with).';
  } else if (/lib(torch|c10)[^:]*: cannot open shared object file|Library not loaded|libtorch.*not found/i.test(raw)) {
    what =
      'the native addon needs a libtorch that is not installed here (or not on the loader path); ' +
      'the missing library is named below.';
  } else if (/invalid ELF header|not a valid Win32|wrong ELF class|file too short/i.test(raw)) {
    what = 'the native addon file is not a loadable library for this machine.';
  } else {
    what = 'the native addon could not be loaded.';
  }
  const e = new Error(`btm-node: ${what}\n  cause: ${raw.split('\n')[0]}\n${BUILD_HINT}`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}

let addon: NativeAddon | undefined;

/** The loaded addon (loaded once; BTM_NODE_ADDON=/path/to/file.node overrides the search). */
export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  const override = process.env.BTM_NODE_ADDON;
  let loaded: NativeAddon;
  try {
    loaded = override ? require(override) : require('node-gyp-build')(PACKAGE_ROOT);
  } catch (err) {
    throw explainLoadError(err, override ?? PACKAGE_ROOT);
  }
  // libtorch starts with one intra-op thread here; default to the machine's cores.
  const fromEnv = Number(process.env.BTM_NUM_THREADS);
  loaded.setNumThreads(Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism());
  addon = loaded;
  return addon;
}
