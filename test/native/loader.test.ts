// Loading the addon: explainLoadError turns each kind of load failure into an actionable message,
// checked on synthetic messages and on real failures (node-gyp-build with no build, dlopen of files
// that are not loadable, and -- where a C compiler is present -- a library that needs a missing
// libtorch, or a libtorch symbol that is not there).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { PACKAGE_ROOT, explainLoadError } from '../../src/native.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'btm-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error that loading `file` as an addon raises (in this process: dlopen failures are safe). */
function loadError(file: string): Error {
  try {
    require(file);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`${file} loaded`);
}

/** Every explained message ends with the same build instructions. */
function expectBuildHint(msg: string) {
  expect(msg).toMatch(/^btm-node: /);
  expect(msg).toContain('npm run build:native');
  expect(msg).toContain(`cd ${PACKAGE_ROOT}`);
  expect(msg).toContain('apt-get install --no-install-recommends libtorch-dev');
  expect(msg).toContain('import torch');
  expect(msg).toContain('LIBTORCH=/path/to/libtorch');
}

describe('explainLoadError on synthetic messages', () => {
  it('no prebuild and no source build', () => {
    const raw = 'No native build was found for platform=linux arch=x64 runtime=node abi=115 uv=1 libc=glibc node=20.20.2\n    loaded from: /pkg\n';
    const e = explainLoadError(new Error(raw), '/pkg');
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toMatch(/no prebuilt addon matches this machine \(.*Node ABI \d+\) and there is no source build in \/pkg\/build\/Release/);
    expect(e.message).toContain(`${process.platform}-${process.arch}`);
    expect(e.message).toContain('cause: No native build was found for platform=linux'); // first line only
    expect(e.message).not.toContain('loaded from');
    expectBuildHint(e.message);
  });

  it('undefined symbol: built against a different libtorch', () => {
    const raw = '/pkg/build/Release/btm_node.node: undefined symbol: _ZN3c1015SmallVectorBaseIjE8grow_podEPvmm';
    const e = explainLoadError(new Error(raw), '/pkg');
    expect(e.message).toMatch(/built against a different libtorch than the one found at run time/);
    expect(e.message).toContain('_ZN3c1015SmallVectorBaseIjE8grow_podEPvmm');
    expectBuildHint(e.message);
    expect(explainLoadError(new Error('symbol lookup error: x.node: undefined symbol: _ZN2at4_ops'), '/pkg').message).toMatch(
      /different libtorch/,
    );
  });

  it('a missing libtorch library: says libtorch is not installed and keeps the library name', () => {
    const raw = 'libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory';
    const e = explainLoadError(new Error(raw), '/pkg');
    expect(e.message).toMatch(/needs a libtorch that is not installed here \(or not on the loader path\)/);
    expect(e.message).toContain('libtorch_cpu.so.1.13');
    expectBuildHint(e.message);
    expect(explainLoadError(new Error('libc10.so: cannot open shared object file: No such file or directory'), '/pkg').message).toMatch(
      /libtorch that is not installed/,
    );
    // macOS spelling
    expect(explainLoadError(new Error('dlopen(x.node, 1): Library not loaded: @rpath/libtorch_cpu.dylib'), '/pkg').message).toMatch(
      /libtorch that is not installed/,
    );
  });

  it('a file that is not a library, and anything else', () => {
    expect(explainLoadError(new Error('/x.node: invalid ELF header'), '/x').message).toMatch(/not a loadable library for this machine/);
    expect(explainLoadError(new Error('/x.node: file too short'), '/x').message).toMatch(/not a loadable library/);
    const other = explainLoadError('something odd', '/x');
    expect(other.message).toMatch(/the native addon could not be loaded\.\n {2}cause: something odd/);
    expectBuildHint(other.message);
  });

  it('keeps the original error as cause', () => {
    const raw = new Error('boom');
    expect((explainLoadError(raw, '/x') as Error & { cause?: unknown }).cause).toBe(raw);
  });
});

describe('explainLoadError on real load failures', () => {
  it('node-gyp-build finding no build', () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    let raw: unknown;
    try {
      require('node-gyp-build')(empty);
    } catch (e) {
      raw = e;
    }
    expect(String(raw)).toMatch(/No native build was found/);
    expect(explainLoadError(raw, empty).message).toMatch(/no prebuilt addon matches this machine/);
  });

  it('dlopen of a garbage file', () => {
    const longGarbage = join(dir, 'garbage.node');
    writeFileSync(longGarbage, 'this is not a shared library, just text. '.repeat(10));
    const shortGarbage = join(dir, 'short.node');
    writeFileSync(shortGarbage, 'garbage\n');
    for (const file of [longGarbage, shortGarbage]) {
      const raw = loadError(file);
      expect((raw as Error & { code?: string }).code).toBe('ERR_DLOPEN_FAILED');
      const e = explainLoadError(raw, file);
      expect(e.message, raw.message).toMatch(/not a loadable library for this machine/);
      expect(e.message).toContain(file);
    }
  });

  it.runIf(process.platform === 'linux' && hasCompiler())('a library that needs a missing libtorch, or lacks a libtorch symbol', () => {
    const work = mkdtempSync(join(dir, 'elf-'));
    const cc = (args: string[]) => execFileSync('cc', args, { cwd: work, stdio: 'pipe' });
    writeFileSync(join(work, 'stub.c'), 'int _ZN3c1012btm_test_symE = 1;\n');
    writeFileSync(join(work, 'empty.c'), 'int btm_unrelated = 0;\n');
    writeFileSync(join(work, 'addon.c'), 'extern int _ZN3c1012btm_test_symE;\nint *btm_ref = &_ZN3c1012btm_test_symE;\n');
    // the "libtorch" the addon links against; its soname is what the loader will look for
    cc(['-shared', '-fPIC', '-o', 'libtorch_cpu.so.77', '-Wl,-soname,libtorch_cpu.so.77', 'stub.c']);
    cc(['-shared', '-fPIC', '-o', 'addon.node', 'addon.c', '-L.', '-l:libtorch_cpu.so.77', '-Wl,-rpath,$ORIGIN']);

    // 1. the library is not there
    rmSync(join(work, 'libtorch_cpu.so.77'));
    const missing = loadError(join(work, 'addon.node'));
    expect(missing.message).toMatch(/libtorch_cpu\.so\.77: cannot open shared object file/);
    const e1 = explainLoadError(missing, work);
    expect(e1.message).toMatch(/needs a libtorch that is not installed here/);
    expect(e1.message).toContain('libtorch_cpu.so.77');

    // 2. a library of that name without the symbol (a "different libtorch")
    cc(['-shared', '-fPIC', '-o', 'libtorch_cpu.so.77', '-Wl,-soname,libtorch_cpu.so.77', 'empty.c']);
    const copy = join(work, 'addon2.node'); // a fresh path: the failed load above is not cached, but be sure
    execFileSync('cp', [join(work, 'addon.node'), copy]);
    const symbol = loadError(copy);
    expect(symbol.message).toMatch(/undefined symbol: _ZN3c1012btm_test_symE/);
    const e2 = explainLoadError(symbol, work);
    expect(e2.message).toMatch(/built against a different libtorch/);
    expect(e2.message).toContain('_ZN3c1012btm_test_symE');
  });
});

describe('native() with BTM_NODE_ADDON', () => {
  const saved = process.env.BTM_NODE_ADDON;
  afterEach(() => {
    if (saved === undefined) delete process.env.BTM_NODE_ADDON;
    else process.env.BTM_NODE_ADDON = saved;
    vi.resetModules();
  });

  /** A fresh copy of src/native.ts, so its load-once cache starts empty. */
  async function freshNative() {
    vi.resetModules();
    return (await import('../../src/native.js')).native;
  }

  it('a garbage file: throws the explained error naming the file', async () => {
    const garbage = join(dir, 'x.node');
    writeFileSync(garbage, 'not an ELF file at all, only some text that is long enough. '.repeat(4));
    process.env.BTM_NODE_ADDON = garbage;
    const native = await freshNative();
    expect(() => native()).toThrow(/btm-node: the native addon file is not a loadable library for this machine/);
    expect(() => native()).toThrow(new RegExp(`cause: ${garbage.replace(/[.]/g, '\\.')}: invalid ELF header`));
    expect(() => native()).toThrow(/npm run build:native/);
  });

  it('a path that does not exist: the generic explanation with the cause', async () => {
    process.env.BTM_NODE_ADDON = join(dir, 'nope.node');
    const native = await freshNative();
    expect(() => native()).toThrow(/btm-node: the native addon could not be loaded\.\n {2}cause: Cannot find module/);
  });

  it('the real build loads through the override', async () => {
    process.env.BTM_NODE_ADDON = join(PACKAGE_ROOT, 'build', 'Release', 'btm_node.node');
    const native = await freshNative();
    expect(native().archNames()).toContain('resnet8');
  });
});

function hasCompiler(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
