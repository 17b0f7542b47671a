// doctor(): what the addon was built against and runs with, and each problem with its fix; it reports
// a broken or missing addon instead of throwing. The CLI runs as users run it (node dist/cli.js doctor).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { doctor, formatDoctor, nodeSupported } from '../src/doctor.js';
import { _blasOfMaps } from '../src/libtorch.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'btm-doctor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const btm = (args: string[], env: Record<string, string | undefined> = {}) => runCli(args, 120_000, env);

describe('nodeSupported', () => {
  it('follows engines ^20.19.0 || >=22.12.0', () => {
    for (const v of ['v18.19.0', 'v20.18.3', 'v21.7.3', 'v22.11.0', 'v19.0.0', 'garbage']) expect(nodeSupported(v), v).toBe(false);
    for (const v of ['v20.19.0', 'v20.20.2', 'v22.12.0', 'v23.0.0', 'v24.11.1']) expect(nodeSupported(v), v).toBe(true);
  });
});

describe('the BLAS behind matrix products (/proc/self/maps)', () => {
  const map = (file: string) => `7f3a2c000000-7f3a2c100000 r-xp 00000000 08:01 1234   ${file}`;
  it('tells the reference BLAS (Debian libblas3) from an optimised one and from none mapped', () => {
    const torch = map('/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13.1');
    expect(_blasOfMaps([torch, map('/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0')].join('\n')))
      .toEqual({ file: '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0', kind: 'reference' });
    expect(_blasOfMaps([torch, map('/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3')].join('\n')))
      .toEqual({ file: '/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3', kind: 'optimised' });
    expect(_blasOfMaps([torch, map('/opt/intel/lib/libmkl_rt.so.2')].join('\n')).kind).toBe('optimised');
    expect(_blasOfMaps([torch, '7f3a2c000000-7f3a2c100000 rw-p 00000000 00:00 0 '].join('\n'))).toEqual({ file: undefined, kind: 'built-in' });
  });
});

describe('doctor() with the working addon', () => {
  it('reports the build, the loaded libtorch, threads and devices, and no problem', () => {
    const r = doctor();
    expect(r.loaded, r.loadError).toBe(true);
    expect(r.build?.torchVersion).toMatch(/^\d+\.\d+/);
    expect(r.build?.torchOrigin).toBeTruthy();
    expect(r.libtorch?.file).toMatch(/libtorch_cpu/);
    expect(r.libtorch?.how).toBe('loaded by this process');
    expect(r.threads).toBeGreaterThan(0);
    expect(r.devices[0]).toBe('cpu');
    expect(r.devices.length).toBe(1 + (r.cudaAvailable ? (r.deviceCount ?? 0) : 0));
    expect(r.node.version).toBe(process.version);
    // .ci/setup installs an optimised BLAS (libopenblas0-openmp); the reference one would be a problem
    expect(r.blas?.kind).not.toBe('reference');
    expect(r.problems).toEqual([]);
    const text = formatDoctor(r);
    expect(text).toMatch(/^BLAS: +/m);
    expect(text).toMatch(/^node: +v\d+/m);
    expect(text).toMatch(new RegExp(`^libtorch: +${r.build!.torchVersion!.replace(/[.+]/g, '\\$&')} \\(built against`, 'm'));
    expect(text).toMatch(/^devices: +cpu/m);
    expect(text).toMatch(/no problems found/);
  });
});

describe('btm doctor', () => {
  it('prints the report and exits 0 when all is well; --json gives the same facts', async () => {
    const r = await btm(['doctor']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^addon: +\S+btm_node\.node \(source build\)/m);
    expect(r.stdout).toMatch(/^loaded lib: +\S*libtorch_cpu/m);
    const j = await btm(['doctor', '--json']);
    const report = JSON.parse(j.stdout);
    expect(report.loaded).toBe(true);
    expect(report.build.torchVersion).toMatch(/^\d+\.\d+/);
  });

  it('an addon that cannot load: exit 1, the explained error and its fix, no crash', async () => {
    const garbage = join(dir, 'garbage.node');
    writeFileSync(garbage, 'not a library '.repeat(20));
    const r = await btm(['doctor'], { BTM_NODE_ADDON: garbage });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^loaded: +no/m);
    expect(r.stdout).toMatch(/PROBLEM: btm-node: the native addon file is not a loadable library for this machine/);
    expect(r.stdout).toMatch(/ {4}fix: .*(npm run build:native|npm rebuild btm-node)/);
    // the source-build prerequisites are checked and listed
    expect(r.stdout).toMatch(/^cmake: +(ok|MISSING)/m);
    expect(r.stdout).toMatch(/^libtorch: +(ok|MISSING)/m);
    const j = await btm(['doctor', '--json'], { BTM_NODE_ADDON: join(dir, 'missing.node') });
    expect(j.code).toBe(1);
    const report = JSON.parse(j.stdout);
    expect(report.loaded).toBe(false);
    expect(report.problems[0].problem).toMatch(/could not be loaded/);
    expect(report.loadError).toContain('missing.node');
  });

  it('names a bad BTM_NUM_THREADS as a problem with its fix', async () => {
    const r = await btm(['doctor', '--json'], { BTM_NUM_THREADS: 'many' });
    const report = JSON.parse(r.stdout);
    expect(r.code).toBe(1);
    expect(report.problems.map((p: { problem: string }) => p.problem)).toContain("BTM_NUM_THREADS='many' is not a positive integer (ignored)");
  });
});
