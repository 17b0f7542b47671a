// A prebuild records the libtorch it was built against (prebuilds/<platform>-<arch>/btm-node.libtorch.json);
// the loader refuses it against another libtorch with both versions and the source-build command named.
//  - here: a copy of this machine's build with a record that names another libtorch version;
//  - for real (BTM_FOREIGN_PREBUILD=/path/to/btm-node.napi.node, set by CI's trixie leg): the bookworm
//    leg's libtorch 1.13 prebuild loaded against trixie's libtorch 2.6. Skipped when the variable is unset.
// Each load runs in a child process (node dist/cli.js doctor --json / a one-line import), as users do.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  RECORD_NAME, buildPrerequisites, fixCommand, libtorchVersionOf, readPrebuildRecord, sameLibtorch, shellQuote, sourceBuildCommand,
  type PrebuildRecord, type Prerequisite,
} from '../../src/libtorch.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dist = (f: string) => join(ROOT, 'dist', f);
const dir = mkdtempSync(join(tmpdir(), 'btm-prebuild-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function node(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Loads the addon at `file` through the package's loader in a child; resolves with the child's result. */
function loadIn(file: string) {
  const code = `import(${JSON.stringify(`file://${dist('index.js')}`)}).then((m) => console.log(JSON.stringify(m.buildInfo())))`;
  return node(['-e', code], { BTM_NODE_ADDON: file });
}

const realBuild = join(ROOT, 'build/Release/btm_node.node');

describe('build commands', () => {
  it('a dependency rebuilds from its project, a checkout builds in place; paths are quoted', () => {
    expect(sourceBuildCommand('/srv/app/node_modules/btm-node')).toBe('cd /srv/app && npm rebuild btm-node');
    expect(sourceBuildCommand('/home/me/btm-node')).toBe('cd /home/me/btm-node && npm run build:native');
    expect(sourceBuildCommand("/srv/my app/node_modules/btm-node")).toBe("cd '/srv/my app' && npm rebuild btm-node");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it('the fix installs the Debian packages of what is missing, then runs the given command', () => {
    const missing: Prerequisite[] = [
      { name: 'cmake', ok: false, detail: 'x', debPackage: 'cmake' },
      { name: 'libtorch', ok: false, detail: 'y', debPackage: 'libtorch-dev' },
    ];
    expect(fixCommand([], 'npm rebuild btm-node')).toBe('npm rebuild btm-node');
    const fix = fixCommand(missing, 'cd /srv/app && npm rebuild btm-node');
    if (existsSync('/etc/debian_version')) {
      expect(fix).toMatch(/^(sudo )?apt-get update && (sudo )?apt-get install -y --no-install-recommends cmake libtorch-dev && cd \/srv\/app && npm rebuild btm-node$/);
    } else {
      expect(fix).toBeUndefined();
    }
  });

  it('finds what this machine has for a source build', () => {
    const found = buildPrerequisites();
    expect(found.map((p) => p.name)).toEqual(['cmake', 'C++ compiler', 'make or ninja', 'libtorch']);
    for (const p of found) expect(p.detail.length, p.name).toBeGreaterThan(0);
    // the tests run after a source build, so everything it needed is here
    expect(found.filter((p) => !p.ok), JSON.stringify(found)).toEqual([]);
  });
});

function record(torchVersion: string): PrebuildRecord {
  return {
    torchVersion, torchOrigin: 'test record', torchLibDir: null, napiVersion: 8, cudaVersion: null,
    platform: process.platform, arch: process.arch, builtOn: 'a test', builtAt: new Date(0).toISOString(),
  };
}

describe('libtorch versions', () => {
  it('reads versions from sonames, wheels and unpacked libtorch; compares major.minor', () => {
    expect(libtorchVersionOf('/nowhere/x86_64-linux-gnu/libtorch_cpu.so.2.6')).toBe('2.6');
    expect(libtorchVersionOf('/nowhere/libtorch_cpu.so.1.13.1')).toBe('1.13.1');
    const wheel = join(dir, 'torch');
    rmSync(wheel, { recursive: true, force: true });
    const lib = join(wheel, 'lib');
    mkdirSync(lib, { recursive: true });
    writeFileSync(join(lib, 'libtorch_cpu.so'), '');
    writeFileSync(join(wheel, 'version.py'), "__version__ = '2.5.1+cu124'\ngit_version = 'x'\n");
    expect(libtorchVersionOf(join(lib, 'libtorch_cpu.so'))).toBe('2.5.1+cu124');
    rmSync(join(wheel, 'version.py'));
    writeFileSync(join(wheel, 'build-version'), '2.4.0+cpu\n');
    expect(libtorchVersionOf(join(lib, 'libtorch_cpu.so'))).toBe('2.4.0+cpu');
    expect(sameLibtorch('2.6.0', '2.6')).toBe(true);
    expect(sameLibtorch('2.6.0+cu124', '2.6.0+debian')).toBe(true);
    expect(sameLibtorch('1.13.0', '2.6')).toBe(false);
    expect(sameLibtorch('2.1.0', '2.10.0')).toBe(false);
  });

  it('a broken record is an error naming the file and the field', () => {
    const d = mkdtempSync(join(dir, 'bad-'));
    writeFileSync(join(d, RECORD_NAME), '{"torchVersion": 13}');
    expect(() => readPrebuildRecord(join(d, 'btm-node.napi.node'))).toThrow(new RegExp(`${RECORD_NAME}: field torchVersion must be a version string`));
    writeFileSync(join(d, RECORD_NAME), '{not json');
    expect(() => readPrebuildRecord(join(d, 'btm-node.napi.node'))).toThrow(/is not valid JSON/);
    expect(readPrebuildRecord(join(dir, 'no-such', 'x.node'))).toBeUndefined();
  });
});

describe.runIf(existsSync(realBuild))('a prebuild record against the libtorch loaded here', () => {
  it('a matching record loads; a record naming another libtorch is refused with both versions and the build command', async () => {
    const ok = await loadIn(realBuild);
    expect(ok.code, ok.stderr).toBe(0);
    const here = JSON.parse(ok.stdout).torchVersion as string;
    expect(here).toMatch(/^\d+\.\d+/);

    const match = mkdtempSync(join(dir, 'match-'));
    copyFileSync(realBuild, join(match, 'btm-node.napi.node'));
    writeFileSync(join(match, RECORD_NAME), JSON.stringify(record(here)));
    const good = await loadIn(join(match, 'btm-node.napi.node'));
    expect(good.code, good.stderr).toBe(0);

    const other = mkdtempSync(join(dir, 'other-'));
    copyFileSync(realBuild, join(other, 'btm-node.napi.node'));
    writeFileSync(join(other, RECORD_NAME), JSON.stringify(record('0.9.0')));
    const bad = await loadIn(join(other, 'btm-node.napi.node'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/was built against libtorch 0\.9\.0 \(test record, on a test\), but the libtorch here is (\d+\.\d+)/);
    const runtime = /the libtorch here is (\d+\.\d+)/.exec(bad.stderr)![1];
    expect(sameLibtorch(runtime, here)).toBe(true);
    expect(bad.stderr).toContain('npm run build:native');
    expect(bad.stderr).not.toMatch(/Segmentation|undefined symbol: _Z/);
  });
});

const foreign = process.env.BTM_FOREIGN_PREBUILD;
describe.runIf(!!foreign)(`a prebuild for another libtorch, for real (BTM_FOREIGN_PREBUILD=${foreign ?? 'unset'})`, () => {
  it('is refused with a clear error naming both versions and the source-build command, not a crash', async () => {
    const rec = JSON.parse(readFileSync(join(dirname(foreign!), RECORD_NAME), 'utf8')) as PrebuildRecord;
    const r = await loadIn(foreign!);
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/Segmentation fault|core dumped/);
    const m = /was built against libtorch (\S+) .*but the libtorch here is (\S+) \(/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(m![1]).toBe(rec.torchVersion);
    expect(sameLibtorch(m![1], m![2])).toBe(false);
    expect(r.stderr).toMatch(/then: {5}.*(npm run build:native|npm rebuild btm-node)/);
    // doctor reports the same, without crashing
    const d = await node([dist('cli.js'), 'doctor', '--json'], { BTM_NODE_ADDON: foreign! });
    expect(d.code).toBe(1);
    const report = JSON.parse(d.stdout);
    expect(report.loaded).toBe(false);
    expect(report.addon.record.torchVersion).toBe(rec.torchVersion);
    expect(report.problems[0].problem).toContain(`built against libtorch ${rec.torchVersion}`);
  });
});
