/**
 * Which libtorch: the record a prebuild carries of the libtorch it was built against, the libtorch
 * this process has loaded (or would load), and what a source build needs, with the one command that
 * installs what is missing. Used by the loader (native.ts), doctor() and the install and prebuild
 * scripts, so they all say the same thing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The file beside a prebuilt addon that records the libtorch it was built against. */
export const RECORD_NAME = 'btm-node.libtorch.json';

export interface PrebuildRecord {
  /** libtorch's TORCH_VERSION at build time, e.g. "1.13.1" or "2.6.0". */
  torchVersion: string;
  /** Where the build found libtorch (LIBTORCH=..., Python torch, system libtorch). */
  torchOrigin: string;
  /** The folder of the libtorch_cpu library the addon was linked against (its RPATH). */
  torchLibDir: string | null;
  napiVersion: number;
  cudaVersion: string | null;
  platform: string;
  arch: string;
  /** The machine the prebuild was built on, e.g. "Debian GNU/Linux 12 (bookworm)". */
  builtOn: string;
  builtAt: string;
}

/** The record beside `addonFile`, or undefined when there is none (a source build). */
export function readPrebuildRecord(addonFile: string): PrebuildRecord | undefined {
  const file = path.join(path.dirname(addonFile), RECORD_NAME);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`btm-node: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const r = parsed as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || typeof r.torchVersion !== 'string' || !/^\d+\.\d+/.test(r.torchVersion)) {
    throw new Error(`btm-node: ${file}: field torchVersion must be a version string like "2.6.0", got ${JSON.stringify(r?.torchVersion)}`);
  }
  return parsed as PrebuildRecord;
}

export interface FoundLibtorch {
  /** The libtorch_cpu library file. */
  file: string;
  /** Its version as far as the file tells (soname "2.6", a wheel's "2.6.0+cu124"), if it does. */
  version: string | undefined;
  /** How it was found. */
  how: string;
}

/**
 * The version of a libtorch_cpu library: the soname suffix (Debian: libtorch_cpu.so.2.6), else a
 * PyTorch wheel's torch/version.py, else an unpacked libtorch's build-version file.
 */
export function libtorchVersionOf(file: string): string | undefined {
  let real = file;
  try {
    real = fs.realpathSync(file);
  } catch {
    /* keep the name */
  }
  for (const name of [path.basename(real), path.basename(file)]) {
    const m = /libtorch_cpu\.so\.(\d+\.\d+(?:\.\d+)?)/.exec(name) ?? /libtorch_cpu\.(\d+\.\d+(?:\.\d+)?)\.dylib/.exec(name);
    if (m) return m[1];
  }
  const up = path.dirname(path.dirname(real));
  try {
    const m = /__version__\s*=\s*['"]([^'"]+)['"]/.exec(fs.readFileSync(path.join(up, 'version.py'), 'utf8'));
    if (m) return m[1];
  } catch {
    /* not a wheel */
  }
  try {
    const v = fs.readFileSync(path.join(up, 'build-version'), 'utf8').trim();
    if (/^\d+\.\d+/.test(v)) return v;
  } catch {
    /* not an unpacked libtorch */
  }
  return undefined;
}

/** The libtorch_cpu this process has mapped (Linux), or undefined. */
export function loadedLibtorch(): FoundLibtorch | undefined {
  let maps: string;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return undefined;
  }
  const m = /\s(\/\S*libtorch_cpu\.(?:so|dylib)\S*)\s*$/m.exec(maps);
  if (!m) return undefined;
  return { file: m[1], version: libtorchVersionOf(m[1]), how: 'loaded by this process' };
}

/** The BLAS library a libtorch process has mapped, and what kind it is. */
export interface LoadedBlas {
  /** The mapped file (the target of Debian's libblas.so.3 alternative), or undefined when none is mapped. */
  file: string | undefined;
  /**
   * 'reference': netlib's unoptimised BLAS (Debian's libblas3: every matrix product of a Linear layer or
   * an attention runs an order of magnitude slower); 'optimised': OpenBLAS, BLIS, MKL or ATLAS;
   * 'built-in': no shared BLAS mapped (PyTorch's own builds link MKL or their own kernels in).
   */
  kind: 'reference' | 'optimised' | 'built-in';
}

/** Classifies the BLAS in a /proc/<pid>/maps text (exported for tests). */
export function _blasOfMaps(maps: string): LoadedBlas {
  const files = [...new Set(maps.split('\n').map((l) => /\s(\/\S+)\s*$/.exec(l)?.[1]).filter((f): f is string => f !== undefined))];
  const optimised = files.find((f) => /openblas|libblis|libmkl|atlas/i.test(path.basename(f)) || /\/(openblas[^/]*|blis[^/]*|atlas)\//i.test(f));
  if (optimised) return { file: optimised, kind: 'optimised' };
  const blas = files.find((f) => /\/libblas\.so/.test(f));
  if (blas) return { file: blas, kind: 'reference' };
  return { file: undefined, kind: 'built-in' };
}

/** The BLAS this process has loaded (Linux), or undefined where /proc/self/maps cannot be read. */
export function loadedBlas(): LoadedBlas | undefined {
  try {
    return _blasOfMaps(fs.readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    return undefined;
  }
}

function libtorchIn(dir: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const hits = names.filter((n) => /^libtorch_cpu\.(so(\.\d+(\.\d+)*)?|dylib)$/.test(n)).sort();
  // prefer a versioned soname (it names the version)
  const pick = hits.find((n) => /\.so\.\d/.test(n)) ?? hits[0];
  return pick && path.join(dir, pick);
}

/**
 * The libtorch the dynamic loader would give an addon whose RPATH is `rpathDir`: LD_LIBRARY_PATH
 * first, then the RPATH folder, then the loader cache (ldconfig -p). Undefined when none is found.
 */
export function findLibtorch(rpathDir?: string | null): FoundLibtorch | undefined {
  const tryDir = (dir: string, how: string): FoundLibtorch | undefined => {
    const file = libtorchIn(dir);
    return file ? { file, version: libtorchVersionOf(file), how } : undefined;
  };
  for (const dir of (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)) {
    const hit = tryDir(dir, 'found through LD_LIBRARY_PATH');
    if (hit) return hit;
  }
  if (rpathDir) {
    const hit = tryDir(rpathDir, "found through the addon's RPATH");
    if (hit) return hit;
  }
  if (process.platform === 'linux') {
    for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
      const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0 || !r.stdout) continue;
      const files = [...r.stdout.matchAll(/^\s*libtorch_cpu\.so\S*\s.*=>\s*(\S+)\s*$/gm)].map((m) => m[1]);
      const file = files.find((f) => /\.so\.\d/.test(f)) ?? files[0];
      if (file) return { file, version: libtorchVersionOf(file), how: 'found through the loader cache (ldconfig -p)' };
      break;
    }
  }
  return undefined;
}

/** True when two libtorch versions share major.minor (1.13.1 ~ 1.13, 2.6.0+cu124 ~ 2.6). */
export function sameLibtorch(a: string, b: string): boolean {
  const mm = (v: string) => /^(\d+)\.(\d+)/.exec(v)?.slice(1, 3).join('.');
  return mm(a) !== undefined && mm(a) === mm(b);
}

// ------------------------------------------------------------------------------------------------
// What a source build needs
// ------------------------------------------------------------------------------------------------

export interface Prerequisite {
  name: 'cmake' | 'C++ compiler' | 'make or ninja' | 'libtorch';
  ok: boolean;
  /** What was found, or why it counts as missing. */
  detail: string;
  /** The Debian/Ubuntu package that provides it. */
  debPackage: string;
}

function onPath(cmd: string): string | undefined {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, cmd);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function cmakePrereq(): Prerequisite {
  const base = { name: 'cmake', debPackage: 'cmake' } as const;
  const cmake = onPath('cmake');
  if (!cmake) return { ...base, ok: false, detail: 'cmake is not on PATH' };
  const r = spawnSync(cmake, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /cmake version (\d+)\.(\d+)(\S*)/.exec(r.stdout ?? '');
  if (!m) return { ...base, ok: false, detail: `${cmake} --version printed no version` };
  const ok = Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 18);
  return { ...base, ok, detail: `${cmake} ${m[1]}.${m[2]}${m[3]}${ok ? '' : ' (needs >= 3.18)'}` };
}

function compilerPrereq(): Prerequisite {
  const base = { name: 'C++ compiler', debPackage: 'g++' } as const;
  const wanted = process.env.CXX ? [process.env.CXX.split(' ')[0]] : ['c++', 'g++', 'clang++'];
  for (const c of wanted) {
    const hit = onPath(c);
    if (hit) return { ...base, ok: true, detail: hit };
  }
  return { ...base, ok: false, detail: `none of ${wanted.join(', ')} is on PATH` };
}

function makePrereq(): Prerequisite {
  const base = { name: 'make or ninja', debPackage: 'make' } as const;
  const hit = onPath('ninja') ?? onPath('make');
  return hit ? { ...base, ok: true, detail: hit } : { ...base, ok: false, detail: 'neither make nor ninja is on PATH' };
}

const SYSTEM_TORCH_CMAKE = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch',
  '/usr/lib/cmake/Torch',
  '/usr/share/cmake/Torch',
  '/usr/local/share/cmake/Torch',
  '/usr/local/lib/cmake/Torch',
];

/** Where CMakeLists.txt would find libtorch, in its order, or why not. */
function libtorchPrereq(): Prerequisite {
  const base = { name: 'libtorch', debPackage: 'libtorch-dev' } as const;
  const lib = process.env.LIBTORCH;
  if (lib) {
    const ok = ['share/cmake/Torch/TorchConfig.cmake', 'TorchConfig.cmake'].some((f) => fs.existsSync(path.join(lib, f)));
    return { ...base, ok, detail: ok ? `LIBTORCH=${lib}` : `LIBTORCH=${lib} has no share/cmake/Torch/TorchConfig.cmake` };
  }
  if (process.env.Torch_DIR) {
    const ok = fs.existsSync(path.join(process.env.Torch_DIR, 'TorchConfig.cmake'));
    return { ...base, ok, detail: `Torch_DIR=${process.env.Torch_DIR}${ok ? '' : ' has no TorchConfig.cmake'}` };
  }
  const python = process.env.PYTHON || onPath('python3') || onPath('python');
  if (python) {
    try {
      const prefix = execFileSync(python, ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], {
        encoding: 'utf8',
        timeout: 60_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      if (fs.existsSync(path.join(prefix, 'Torch', 'TorchConfig.cmake'))) return { ...base, ok: true, detail: `Python torch (${python}): ${prefix}` };
    } catch {
      /* no Python torch */
    }
  }
  const sys = SYSTEM_TORCH_CMAKE.find((d) => fs.existsSync(path.join(d, 'TorchConfig.cmake')));
  if (sys) return { ...base, ok: true, detail: `system libtorch: ${sys}` };
  return { ...base, ok: false, detail: 'no LIBTORCH, no Torch_DIR, no Python torch and no system libtorch (TorchConfig.cmake)' };
}

/** Checks cmake, a C++ compiler, make/ninja and libtorch, as the source build will need them. */
export function buildPrerequisites(): Prerequisite[] {
  return [cmakePrereq(), compilerPrereq(), makePrereq(), libtorchPrereq()];
}

/** The package folder's `node_modules` parent project, when the package is installed as a dependency. */
export function dependentProject(packageRoot: string): string | undefined {
  const parent = path.dirname(path.resolve(packageRoot));
  return path.basename(parent) === 'node_modules' ? path.dirname(parent) : undefined;
}

/** `s` quoted for a POSIX shell when it needs quoting. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

/** The command that builds the addon from source for the (installed) package at `packageRoot`. */
export function sourceBuildCommand(packageRoot: string): string {
  const project = dependentProject(packageRoot);
  return project ? `cd ${shellQuote(project)} && npm rebuild btm-node` : `cd ${shellQuote(packageRoot)} && npm run build:native`;
}

/**
 * The one command that installs what `missing` lacks and then runs `then` (the build, or the retried
 * install), or undefined when this is not a Debian/Ubuntu machine (apt) and no single command is known.
 */
export function fixCommand(missing: Prerequisite[], then: string): string | undefined {
  if (missing.length === 0) return then;
  if (!fs.existsSync('/etc/debian_version') || !onPath('apt-get')) return undefined;
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  const pkgs = [...new Set(missing.map((p) => p.debPackage))].join(' ');
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${pkgs} && ${then}`;
}
