/**
 * doctor(): what the native addon was built against (libtorch version and origin, CUDA/cuDNN, Node-API),
 * what it runs with here (the libtorch loaded, threads, devices), and each problem found with its fix.
 * It never throws for a missing or broken addon: that becomes a problem with the loader's explanation.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { addonLocation, native, PACKAGE_ROOT } from './native.js';
import {
  buildPrerequisites, findLibtorch, fixCommand, loadedBlas, loadedLibtorch, sameLibtorch, sourceBuildCommand,
  type FoundLibtorch, type LoadedBlas, type PrebuildRecord, type Prerequisite,
} from './libtorch.js';

/** Node versions this package supports (package.json engines): require() of ESM needs these. */
export const SUPPORTED_NODE = '^20.19.0 || >=22.12.0';

/** True when `version` (e.g. "v20.19.2") satisfies SUPPORTED_NODE. */
export function nodeSupported(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major === 20) return minor >= 19;
  if (major === 21) return false;
  if (major === 22) return minor >= 12;
  return major > 22;
}

/** What the addon reports about its build; fields may be missing from older builds. */
export interface AddonBuild {
  torchVersion?: string;
  torchOrigin?: string;
  napiVersion?: number;
  cudaVersion?: string | null;
  cudnnVersion?: string | null;
  hardwareConcurrency?: number;
  parallelInfo?: string;
  /** c10d backends compiled in ('gloo', 'nccl'). */
  distBackends?: string[];
}

export interface DoctorProblem {
  problem: string;
  fix: string;
}

export interface DoctorReport {
  node: { version: string; napiVersion: string | undefined; supported: boolean };
  /** The addon file and what kind it is; undefined when none was found. */
  addon?: { file: string; kind: 'prebuild' | 'source build' | 'BTM_NODE_ADDON'; record?: PrebuildRecord };
  /** True when the addon loaded. */
  loaded: boolean;
  /** The loader's explained error when it did not. */
  loadError?: string;
  build?: AddonBuild;
  /** The libtorch this process loaded (or, when the addon did not load, the one it would find). */
  libtorch?: FoundLibtorch;
  /** The BLAS behind matrix products (Linear layers, attention), when the addon loaded. */
  blas?: LoadedBlas;
  threads?: number;
  /** Whether the thread count adapts to other processes' load (the default without BTM_NUM_THREADS). */
  threadsAdaptive?: boolean;
  cores: number;
  cudaAvailable?: boolean;
  deviceCount?: number;
  devices: string[];
  /** What a source build needs; filled when the addon did not load. */
  prerequisites?: Prerequisite[];
  /** Whether sharp (needed only for list-file datasets) can be imported. */
  sharp: boolean;
  problems: DoctorProblem[];
}

function optional<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Checks this installation; see DoctorReport. */
export function doctor(): DoctorReport {
  const problems: DoctorProblem[] = [];
  const nodeOk = nodeSupported(process.version);
  if (!nodeOk) {
    problems.push({
      problem: `Node ${process.version} is not supported (btm-node needs Node ${SUPPORTED_NODE}: require() of this ES module package and the Node-API it uses)`,
      fix: 'install Node 22 LTS (https://nodejs.org/en/download, or your distribution: Debian 13 ships Node 20.19)',
    });
  }
  const report: DoctorReport = {
    node: { version: process.version, napiVersion: process.versions.napi, supported: nodeOk },
    loaded: false,
    cores: availableParallelism(),
    devices: [],
    sharp: optional(() => createRequire(import.meta.url).resolve('sharp')) !== undefined,
    problems,
  };

  let location: ReturnType<typeof addonLocation> | undefined;
  try {
    location = addonLocation();
    const kind = process.env.BTM_NODE_ADDON ? 'BTM_NODE_ADDON' : location.record || /[\\/]prebuilds[\\/]/.test(location.file) ? 'prebuild' : 'source build';
    report.addon = { file: location.file, kind, record: location.record };
  } catch {
    /* reported through native() below */
  }

  try {
    const addon = native();
    report.loaded = true;
    report.build = addon.buildInfo() as AddonBuild;
    report.threads = addon.getNumThreads();
    report.threadsAdaptive = addon.threadsAdaptive();
    report.cudaAvailable = addon.cudaAvailable();
    report.deviceCount = addon.deviceCount();
    report.devices = ['cpu', ...Array.from({ length: report.cudaAvailable ? report.deviceCount : 0 }, (_, i) => `cuda:${i}`)];
    report.libtorch = loadedLibtorch();
    report.blas = loadedBlas();
  } catch (e) {
    report.loadError = (e as Error).message;
    report.libtorch = loadedLibtorch() ?? findLibtorch(location?.record?.torchLibDir);
    report.prerequisites = buildPrerequisites();
    const missing = report.prerequisites.filter((p) => !p.ok);
    const fix = fixCommand(missing, sourceBuildCommand(PACKAGE_ROOT));
    problems.push({
      problem: report.loadError.split('\n')[0],
      fix: fix ?? `install ${missing.map((p) => p.name).join(', ')}, then ${sourceBuildCommand(PACKAGE_ROOT)}`,
    });
  }

  const b = report.build;
  if (b?.torchVersion && report.libtorch?.version && !sameLibtorch(b.torchVersion, report.libtorch.version)) {
    problems.push({
      problem: `the addon was compiled with libtorch ${b.torchVersion} headers but runs with libtorch ${report.libtorch.version} (${report.libtorch.file})`,
      fix: sourceBuildCommand(PACKAGE_ROOT),
    });
  }
  if (b?.napiVersion !== undefined && report.node.napiVersion !== undefined && Number(report.node.napiVersion) < b.napiVersion) {
    problems.push({
      problem: `the addon needs Node-API ${b.napiVersion}, this Node offers ${report.node.napiVersion}`,
      fix: `install Node ${SUPPORTED_NODE}`,
    });
  }
  const envThreads = process.env.BTM_NUM_THREADS;
  if (envThreads !== undefined && !(Number.isInteger(Number(envThreads)) && Number(envThreads) > 0)) {
    problems.push({ problem: `BTM_NUM_THREADS='${envThreads}' is not a positive integer (ignored)`, fix: 'unset BTM_NUM_THREADS or set it to a thread count, e.g. BTM_NUM_THREADS=4' });
  }
  if (report.threads !== undefined && report.threads > report.cores) {
    problems.push({
      problem: `libtorch uses ${report.threads} threads on ${report.cores} cores (oversubscribed: slower)`,
      fix: `BTM_NUM_THREADS=${report.cores}`,
    });
  }
  if (report.blas?.kind === 'reference') {
    problems.push({
      problem: `matrix products (Linear layers, attention: ViTs, LoRA, classifiers) run on the reference BLAS ${report.blas.file}, ` +
        'which is unoptimised: an order of magnitude slower than OpenBLAS (convolutions are not affected: they run on oneDNN)',
      fix: 'Debian/Ubuntu: apt-get install libopenblas0-openmp (it takes over libblas.so.3 through update-alternatives; its OpenMP build shares libtorch\'s threads)',
    });
  }
  if (b?.cudaVersion && report.cudaAvailable === false) {
    problems.push({
      problem: `libtorch was built with CUDA ${b.cudaVersion} but no CUDA device is visible`,
      fix: 'check the driver with nvidia-smi and that CUDA_VISIBLE_DEVICES does not hide the GPUs',
    });
  }
  return report;
}

/** The report as text, one fact a line, then the problems with their fixes. */
export function formatDoctor(r: DoctorReport): string {
  const out: string[] = [];
  const line = (k: string, v: string) => out.push(`${`${k}:`.padEnd(14)}${v}`);
  line('node', `${r.node.version} (Node-API ${r.node.napiVersion ?? '?'})${r.node.supported ? '' : `  NOT SUPPORTED: needs ${SUPPORTED_NODE}`}`);
  if (r.addon) {
    line('addon', `${r.addon.file} (${r.addon.kind})`);
    if (r.addon.record) {
      const rec = r.addon.record;
      line('prebuild for', `libtorch ${rec.torchVersion} (${rec.torchOrigin}), built on ${rec.builtOn} at ${rec.builtAt}`);
    }
  } else {
    line('addon', 'none found');
  }
  line('loaded', r.loaded ? 'yes' : 'no');
  const b = r.build;
  if (b) {
    line('libtorch', `${b.torchVersion ?? '?'} (built against; ${b.torchOrigin ?? 'origin unknown'})`);
    line('CUDA', b.cudaVersion === undefined ? 'unknown (older addon)' : (b.cudaVersion ?? 'none (CPU-only libtorch)'));
    line('cuDNN', b.cudnnVersion === undefined ? 'unknown (older addon)' : (b.cudnnVersion ?? 'none'));
    line('Node-API', b.napiVersion === undefined ? 'unknown (older addon)' : String(b.napiVersion));
    line('distributed', b.distBackends === undefined ? 'unknown (older addon)'
      : b.distBackends.length ? b.distBackends.join(', ') : 'none (Gloo needs libgloo-dev at build time, NCCL BTM_NCCL=1)');
  }
  if (r.libtorch) line(r.loaded ? 'loaded lib' : 'found lib', `${r.libtorch.file} (${r.libtorch.version ?? 'version unknown'}, ${r.libtorch.how})`);
  if (r.blas) line('BLAS', r.blas.kind === 'built-in' ? 'built into libtorch (no shared BLAS mapped)' : `${r.blas.file} (${r.blas.kind})`);
  if (r.threads !== undefined) line('threads', `${r.threads} intra-op on ${r.cores} cores${r.threadsAdaptive ? ' (adaptive: fewer while other processes keep cores busy; BTM_NUM_THREADS fixes it)' : ' (fixed)'}`);
  if (r.loaded) line('devices', `${r.devices.join(', ')}${r.cudaAvailable ? '' : ' (no CUDA device visible)'}`);
  if (b?.parallelInfo) out.push('parallel:', ...b.parallelInfo.trim().split('\n').map((l) => `  ${l}`));
  for (const p of r.prerequisites ?? []) line(p.name, `${p.ok ? 'ok' : 'MISSING'}: ${p.detail}`);
  line('sharp', r.sharp ? 'installed' : 'not installed (needed only for list-file datasets: npm install sharp)');
  if (r.loadError) out.push('', 'load error:', ...r.loadError.split('\n').map((l) => `  ${l}`));
  out.push('');
  if (r.problems.length === 0) out.push('no problems found');
  for (const p of r.problems) out.push(`PROBLEM: ${p.problem}`, `    fix: ${p.fix}`);
  return out.join('\n') + '\n';
}
