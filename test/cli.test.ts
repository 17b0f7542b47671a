// The btm command line, run as a user runs it (node dist/cli.js; dist is compiled by the global setup).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI as cli, cliRunner } from './helpers/cli.js';
import { bytesOf } from './helpers/synthetic.js';
import { readSafetensors } from '../src/safetensors.js';
import { configKeys } from '../src/cli/config-help.js';

const root = mkdtempSync(join(tmpdir(), 'btm-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const btm = cliRunner(280_000);

const tiny = [
  '--runDir', root, '--data.dataset', 'synthetic', '--data.imbalanceFactor', '10', '--model.arch', 'resnet8',
  '--data.synthetic.trainPerClass', '60', '--data.synthetic.testPerClass', '10',
  '--pretrain.epochs', '2', '--pretrain.batchSize', '32', '--btm.epochs', '2', '--btm.numSubsets', '2', '--btm.perClass', '5', '--btm.batchSize', '8',
  '--posttrain.epochs', '1', '--posttrain.batchSize', '32',
];

/** `tiny` with one flag's value replaced (a repeated flag would become an array). */
function withFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  return i < 0 ? [...args, flag, value] : args.map((v, k) => (k === i + 1 ? value : v));
}

/** A usage or input error: exit code 2 (or 1), a `btm: ` line, and no JavaScript internals. */
function expectCleanError(r: { code: number; stderr: string; stdout: string }, code: number, message: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(/^btm: /);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/Cannot read properties|argument must be|is not a function|TypeError|\n\s+at /);
}

describe('btm CLI', () => {
  it('--help lists the commands; run --help every config key with its default and range; eval --help only what eval uses', async () => {
    const h = await btm('--help');
    expect(h.code).toBe(0);
    for (const c of ['run', 'eval', 'merge', 'split', 'info', 'report', 'config']) expect(h.stdout).toContain(`btm ${c}`);
    const r = await btm('run', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--preset.*\n?.*ce.*crt.*mislas.*btm/s);
    const keys = configKeys();
    expect(keys.length).toBeGreaterThan(80);
    for (const k of keys) expect(r.stdout, k.key).toMatch(new RegExp(`^--${k.key.replace(/\./g, '\\.')}  `, 'm'));
    expect(r.stdout).toMatch(/^--pretrain\.lr +number 0\.\.100 +0\.1$/m);
    expect(r.stdout).toMatch(/^--btm\.merge +uniform\|adaptive-hmean\|adaptive-gmean\|greedy-hmean\|greedy-gmean +uniform$/m);
    expect(r.stdout).toMatch(/^--posttrain\.loss +ce \| logit-adjust\(tau 0\.\.10\) \| las\(epsHead 0\.\.1, epsTail 0\.\.1\) \| gml\(p 0\.1\.\.10\) \| bce \| bce-logit-adjust\(tau 0\.\.10\) \| bce-cb\(beta 0\.\.0\.99999\) +\{"type":"las"/m);
    const e = await btm('eval', '--help');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^--data\.dataset /m);
    expect(e.stdout).toMatch(/^--eval\.batchSize /m);
    for (const unused of ['--preset', '--size', '--pretrain.', '--btm.', '--posttrain.', '--model.arch', '--resume']) expect(e.stdout).not.toContain(unused);
    // btm config: the effective values of a preset, size and flags
    const c = await btm('config', '--preset', 'mislas', '--size', 'paper', '--posttrain.epochs', '3');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^--model\.arch +\S+ +resnet32$/m);
    expect(c.stdout).toMatch(/^--posttrain\.epochs +int 0\.\.100000 +3$/m);
    expect(JSON.parse((await btm('config', '--json', '--preset', 'crt')).stdout).pipeline).toEqual(['pretrain', 'posttrain']);
  });

  it('usage errors stop the command: exit 2 with the usage message, nothing run or written', async () => {
    const dir = join(root, 'usage');
    mkdirSync(dir);
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /Unknown command: frobnicate/],
      [['run', '--preset', 'fast'], /Argument: preset, Given: "fast"/],
      [['run', '--size', 'huge'], /Argument: size, Given: "huge"/],
      [['run', 'extra'], /Unknown command: extra|unexpected argument/],
      [['eval'], /Not enough non-option arguments/],
      [['eval', 'x.safetensors', '--pretrain.lr', 'fast'], /config\.pretrain\.lr: Invalid input/],
      [['split'], /Missing required argument: out/],
      [['split', '--out', join(dir, 's.txt'), '--btm.epoch', '3'], /config\.btm: Unrecognized key: "epoch"/],
      [['interpolate', 'a.safetensors'], /Not enough non-option arguments/],
      [['interpolate', 'a', 'b', '--steps', '1'], /--steps must be an integer >= 2/],
      [['merge'], /Not enough non-option arguments/],
      [['merge', 'a', 'b'], /Missing required argument: out/],
      [['merge', 'a', 'b', '--out', join(dir, 'm'), '--bogus', '1'], /Unknown argument: bogus/],
      [['info'], /Not enough non-option arguments/],
      [['info', 'x', '--colour'], /Unknown argument: colour/],
      [['report'], /Not enough non-option arguments/],
      [['run', '--pretrain.epochs', '-3', '--btm.colour', 'red'], /config\.pretrain\.epochs: Too small: expected number to be >=0[^]*config\.btm: Unrecognized key: "colour"/],
      [['run', '--config', write('array.json', '[{"pretrain": {"epochs": 1}}]')], /array\.json: a config file holds a JSON object of config keys .*not an array/],
      [['run', '--config', write('number.json', '42')], /number\.json: .*not a number/],
      [['run', '--config', write('null.json', 'null')], /null\.json: .*not null/],
      [['eval', 'x.safetensors', '--config', write('string.json', '"cifar10"')], /string\.json: .*not a string/],
    ];
    for (const [args, message] of cases) {
      const r = await btm(...args, ...(args[0] === 'run' ? ['--runDir', join(dir, 'runs')] : []));
      expectCleanError(r, 2, message);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    expect(existsSync(join(dir, 'runs'))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['array.json', 'null.json', 'number.json', 'string.json']);
  });

  it('merge --weights must be finite, >= 0, one per checkpoint, not all zero', async () => {
    const out = join(root, 'never.safetensors');
    for (const [w, message] of [
      ['-1,2', /Unknown argument: 1|each weight must be a finite number >= 0, got '-1'/],
      ['=-1,2', /each weight must be a finite number >= 0, got '-1'/],
      ['=1,-0.5', /got '-0\.5'/],
      ['=Infinity,1', /got 'Infinity'/],
      ['=1,x', /got 'x'/],
      ['=1,,2', /got ''/],
      ['=0,0', /the weights are all zero/],
      ['=1', /1 weight\(s\) for 2 checkpoint\(s\)/],
    ] as const) {
      const flag = w.startsWith('=') ? [`--weights${w}`] : ['--weights', w];
      const r = await btm('merge', 'a.safetensors', 'b.safetensors', '--out', out, ...flag);
      expectCleanError(r, 2, message);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('a run directory that cannot be created fails at once with its path; bad data fails before the directory is written', async () => {
    const file = join(root, 'plain-file');
    writeFileSync(file, 'x');
    for (const [runDir, message] of [
      [join(file, 'runs'), new RegExp(`cannot create the run directory .*plain-file.*: ${file.replace(/[/.]/g, '\\$&')} is not a directory`)],
      ['/proc/self/btm-runs', /cannot create the run directory \/proc\/self\/btm-runs\/\S+: \/proc\/self is not writable/],
    ] as const) {
      const t0 = performance.now();
      const r = await btm('run', ...withFlag(tiny, '--runDir', runDir));
      expectCleanError(r, 1, message);
      expect(performance.now() - t0).toBeLessThan(30_000);
    }
    // a split file with a header and no images: refused before anything is written
    const split = join(root, 'empty-split.txt');
    writeFileSync(split, '# btm-node long-tailed split\n# classes 4\n');
    const r = await btm('run', '--name', 'empty-split', ...tiny, '--data.splitFile', split);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(split);
    expect(r.stderr).not.toMatch(/NaN|Cannot read properties/);
    expect(existsSync(join(root, 'empty-split'))).toBe(false);
  });

  it('divergence is blamed on the stage where it happens: --pretrain.lr 100 stops pre-training', async () => {
    const r = await btm('run', '--name', 'diverge', '--quiet', ...withFlag(tiny, '--pretrain.lr', '100'));
    expectCleanError(r, 1, /^btm: pretrain: the (loss|weights) .* in epoch \d.*; pretrain\.lr is 100: lower --pretrain\.lr\n$/);
    expect(JSON.parse(readFileSync(join(root, 'diverge', 'state.json'), 'utf8')).finished).toEqual([]);
  });

  it('run --json, then info, eval, merge, split, report and report --curves on what it wrote', async () => {
    const run = await btm('run', '--name', 'cli', '--json', ...tiny);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.status).toBe('complete');
    expect(result.rows.map((r: { step: string }) => r.step)).toEqual(['pretrain', 'btm-0', 'btm-1', 'btm-merge', 'posttrain']);

    const info = await btm('info', result.checkpoint, '--json');
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout).meta).toMatchObject({ arch: 'resnet8', numClasses: 4, inChannels: 1, imageSize: 16 });
    const words = await btm('info', result.checkpoint);
    expect(words.code).toBe(0);
    expect(words.stdout).toMatch(/^architecture +resnet8, [\d,]+ parameters in \d+ tensors$/m);
    expect(words.stdout).toMatch(/^input +1 channel\(s\), 16x16 pixels$/m);
    expect(words.stdout).toMatch(/^classes +4/m);
    expect(words.stdout).toMatch(/^normalisation +mean \d\.\d{4}; std \d\.\d{4}/m);
    expect(words.stdout).toMatch(/^stage +posttrain$/m);
    const mergedInfo = await btm('info', join(result.dir, 'btm/merged.safetensors'));
    expect(mergedInfo.stdout).toMatch(/^stage +btm \(step btm-merge\), merge uniform, members 0,1$/m);

    const ev = await btm('eval', result.checkpoint, '--json', ...tiny.slice(2));
    expect(ev.code).toBe(0);
    // the run's flags are accepted; eval says which it does not use
    expect(ev.stderr).toMatch(/^btm eval: not used here .*: --model\.arch --pretrain\.epochs --pretrain\.batchSize --btm\.epochs/);
    expect(JSON.parse(ev.stdout).accuracy).toBeCloseTo(result.rows[result.rows.length - 1].accuracy, 10);
    // a checkpoint used on data of another shape and class count: the mismatch is named
    const other = await btm('eval', result.checkpoint, '--data.dataset', 'synthetic', '--data.synthetic.numClasses', '6', '--data.synthetic.size', '32');
    expectCleanError(other, 2, /the model expects 16x16x1 images \(HxWxC\) and 4 classes, but .* has 32x32x1 images and 6 classes \(image size, classes differ\)/);

    const out = join(root, 'm.safetensors');
    const m = await btm('merge', join(result.dir, 'btm/finetune-0.safetensors'), join(result.dir, 'btm/finetune-1.safetensors'), '--out', out);
    expect(m.code).toBe(0);
    // the CLI merge of the two fine-tunes equals the run's own uniform merge, tensor by tensor
    const mine = (await readSafetensors(out)).dict, runs = (await readSafetensors(join(result.dir, 'btm/merged.safetensors'))).dict;
    expect(mine.map((e) => e.name)).toEqual(runs.map((e) => e.name));
    for (let i = 0; i < mine.length; i++) expect(bytesOf(mine[i].data).equals(bytesOf(runs[i].data)), mine[i].name).toBe(true);

    const sweep = await btm('interpolate', join(result.dir, 'pretrain.safetensors'), join(result.dir, 'btm/finetune-0.safetensors'), '--steps', '3', '--json', ...tiny.slice(2));
    expect(sweep.code).toBe(0);
    const points = JSON.parse(sweep.stdout);
    expect(points.map((p: { lambda: number }) => p.lambda)).toEqual([0, 0.5, 1]);
    expect(points[0].acc).toBeCloseTo(result.rows[0].accuracy, 10); // lambda 0 is the pre-trained model
    expect(points[2].acc).toBeCloseTo(result.rows[1].accuracy, 10); // lambda 1 is fine-tune #1

    const splitFile = join(root, 'split.txt');
    const s = await btm('split', '--out', splitFile, ...tiny.slice(2));
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/per class: 60 27 12 6/);
    expect(readFileSync(splitFile, 'utf8').trim().split('\n')).toHaveLength(1 + 60 + 27 + 12 + 6);

    // report on one run: values without a spread; --curves: the per-epoch metrics
    const rep = await btm('report', result.dir);
    expect(rep.code).toBe(0);
    expect(rep.stdout).not.toContain('±');
    expect(rep.stdout).toMatch(/^cli +post-train \(las \+ LWS \+ shift-BN\) +1 +\d+\.\d\d +/m);
    const curves = await btm('report', result.dir, '--curves');
    expect(curves.code).toBe(0);
    expect(curves.stdout).toMatch(/^pretrain +1\/2 +[\d.]+ +[\d.]+ +[\d.]+ +\d+/m);
    expect(curves.stdout).toMatch(/^btm-1 +2\/2 /m);
    expect(curves.stdout).toMatch(/^posttrain +test +- +- +- +- +[\d.]+ /m);
    const cj = JSON.parse((await btm('report', result.dir, '--curves', '--json')).stdout);
    expect(cj[0].records.filter((r: { kind: string }) => r.kind === 'epoch')).toHaveLength(2 + 2 + 2 + 1);
  });

  it('Ctrl-C (SIGINT) stops a run mid-way; --resume finishes it with the same rows and weights as an uninterrupted run', async () => {
    // the tiny run with 12 pre-training epochs: room to interrupt it after a checkpointed epoch
    const long = withFlag(tiny, '--pretrain.epochs', '12');
    const straight = await btm('run', '--name', 'straight', '--json', ...long);
    expect(straight.code, straight.stderr).toBe(0);
    const child = spawn(process.execPath, [cli, 'run', '--name', 'sigint', ...long], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const state = join(root, 'sigint', 'state.json');
    // wait until a pre-training epoch has been checkpointed, then interrupt
    for (let i = 0; i < 1200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).partial) break;
    }
    child.kill('SIGINT');
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 200_000); // never leave a stray run behind
    const code = await exited;
    clearTimeout(watchdog);
    expect(code).toBe(130);
    expect(stderr).toMatch(/stopping after the current step/);
    expect(stderr).toMatch(/continue with --resume/);
    // stderr is not a TTY here: a progress line per finished epoch
    expect(stderr).toMatch(/^pretrain epoch 1\/12: loss \d+\.\d{4} acc [\d.]+% lr \S+ \S+ img\/s ETA \S+$/m);
    const saved = JSON.parse(readFileSync(state, 'utf8'));
    expect(saved.partial.step).toBe('pretrain');
    expect(saved.finished).toEqual([]);

    // without --resume the name is taken; with changed settings of a started stage it is refused by key
    const again = await btm('run', '--name', 'sigint', ...long);
    expectCleanError(again, 1, /already holds a run: pass --resume/);
    const changed = await btm('run', '--name', 'sigint', '--resume', ...withFlag(withFlag(long, '--pretrain.batchSize', '16'), '--seed', '5'));
    expectCleanError(changed, 2, /settings differ from those .* in: pretrain\.batchSize, seed\./);

    const resumed = await btm('run', '--name', 'sigint', '--resume', '--json', ...long);
    expect(resumed.code, resumed.stderr).toBe(0);
    const a = JSON.parse(straight.stdout), b = JSON.parse(resumed.stdout);
    const strip = (rows: { trainSeconds: number }[]) => rows.map(({ trainSeconds: _t, ...rest }) => rest);
    expect(strip(b.rows)).toEqual(strip(a.rows));
    const wa = (await readSafetensors(a.checkpoint)).dict, wb = (await readSafetensors(b.checkpoint)).dict;
    expect(wb.map((e) => e.name)).toEqual(wa.map((e) => e.name));
    for (let i = 0; i < wa.length; i++) expect(bytesOf(wb[i].data).equals(bytesOf(wa[i].data)), wa[i].name).toBe(true);
  }, 300_000);

  it('a config file is validated with its name in the message', async () => {
    const file = join(root, 'bad.json');
    writeFileSync(file, '{"pretrain": {"epochs": 1, "lr": "fast"}}');
    const r = await btm('run', '--config', file, '--runDir', root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config\.pretrain\.lr: Invalid input: expected number, received string/);
    writeFileSync(file, '{ not json');
    const r2 = await btm('run', '--config', file, '--runDir', root);
    expect(r2.stderr).toContain(file);
    expect(existsSync(join(root, 'btm-cpu'))).toBe(false);
  });
});
