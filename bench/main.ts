/**
 * `npm run bench [-- --quick] [--only section[,section]] [--threads N] [--no-tfjs] [--runs DIR] [--device cpu|cuda]`
 *
 * `--device cuda` (a CUDA box; scripts/gpu/run.sh runs it): the 'cuda' section (train img/s against
 * PyTorch eager on the same card, bench/cuda.ts) and 'btm-batched' with every model on the GPU; the CPU
 * sections run only when named with --only.
 *
 * Native vs TensorFlow.js vs PyTorch side by side: train/eval throughput, achieved FLOP/s against a
 * measured matmul peak, a profile of one step, the cost of crossing into native, state-dict merging,
 * BTM's overhead, serving load (examples/serve.mjs, batching on vs one request at a time). Prints one table (figure, peer's figure, ratio, target) and writes the same with
 * machine info to bench/results/<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { cudaAvailable, getNumThreads, setNumThreads } from '../src/index.js';
import { formatTable } from '../src/report/table.js';
import { BTM_BATCHED_CASES, btmBatchedCase } from './btm-batched.js';
import { cudaThroughput } from './cuda.js';
import { btmOverhead } from './btm-overhead.js';
import { fmt, loadAddon, median, PYTHON, ROOT, torchPeer } from './common.js';
import { crossing } from './crossing.js';
import { distributedBench } from './distributed.js';
import { sharedCpuBench } from './shared-cpu.js';
import { cifarForwardFlops, cifarTrainFlops } from './flops.js';
import { mergeBench } from './merge.js';
import { ARCH, caseLabel, CLASSES, throughput } from './native-vs-peers.js';
import { profileStep } from './profile.js';
import { serveBench } from './serve.js';

const SECTIONS = ['throughput', 'flops', 'profile', 'crossing', 'merge', 'btm', 'btm-batched', 'serve', 'cuda', 'distributed', 'shared-cpu'] as const;
type Section = (typeof SECTIONS)[number];

/** Targets of the issue; FLOP_TARGET is the fraction of the matmul peak we state for the batch-128 step. */
const TARGETS = { cudaTrainVsTorch: 1.0, btmBatchedCpu: 0.6, btmBatchedCuda: 0.2, sharedCpu: 0.4, trainVsTorchB128: 1.0, trainVsTorchB8: 1.3, vsTfjs: 300, flopFraction: 0.4, mergeVsRead: 0.5, rssGrowth: 1.1 };

interface Row {
  figure: string;
  ours: number | null;
  peer: string;
  peerValue: number | null;
  ratio: number | null;
  note: string;
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    threads: { type: 'string' },
    'no-tfjs': { type: 'boolean', default: false },
    runs: { type: 'string', multiple: true },
    device: { type: 'string', default: 'cpu' },
  },
});
const device = args.device as 'cpu' | 'cuda';
if (device !== 'cpu' && device !== 'cuda') throw new Error(`--device: 'cpu' or 'cuda', got '${args.device}'`);
const only = (args.only ?? []).flatMap((s) => s.split(','));
const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
if (unknown.length) throw new Error(`--only: unknown section(s) ${unknown.join(', ')} (known: ${SECTIONS.join(', ')})`);
const CUDA_DEFAULT: Section[] = ['cuda', 'btm-batched'];
const want = (s: Section) => (only.length === 0 ? (device === 'cuda' ? CUDA_DEFAULT.includes(s) : s !== 'cuda') : only.includes(s));
const quick = args.quick;

const t0 = performance.now();
const log = (s: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);

const build = await loadAddon();
if (device === 'cuda' && !cudaAvailable()) throw new Error('--device cuda: the addon sees no CUDA device (btm doctor says why)');
const threads = args.threads ? Number(args.threads) : availableParallelism();
setNumThreads(threads);
/** Fraction of the machine's CPU time that was busy over the next `ms` (before our work starts: other processes). */
async function cpuBusy(ms = 1000): Promise<number> {
  const sample = () => cpus().reduce((a, c) => ({ idle: a.idle + c.times.idle, total: a.total + Object.values(c.times).reduce((x, y) => x + y, 0) }), { idle: 0, total: 0 });
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}
const busyBefore = await cpuBusy();
const machine = {
  cpu: cpus()[0]?.model, cores: availableParallelism(), memoryGB: totalmem() / 2 ** 30, platform: `${platform()} ${release()}`,
  node: process.version, libtorch: build.torchVersion, libtorchOrigin: build.torchOrigin, threads: getNumThreads(),
  device: cudaAvailable() ? 'cpu + cuda' : 'cpu', benchDevice: device, python: PYTHON, cpuBusyBefore: busyBefore, loadAverage1m: loadavg()[0],
};
const busyWarning = busyBefore > 0.25 ? `WARNING: ${(busyBefore * 100).toFixed(0)}% of the CPU was busy with other processes before the run: figures will be low and noisy` : '';
if (busyWarning) log(busyWarning);

const rows: Row[] = [];
const notes: string[] = [];
const out: Record<string, unknown> = {};
const row = (figure: string, ours: number | null, peer: string, peerValue: number | null, note = '', ratio?: number | null) =>
  rows.push({ figure, ours, peer, peerValue, note, ratio: ratio !== undefined ? ratio : ours != null && peerValue ? ours / peerValue : null });

/** 'met' or 'MISSED by N%' for a figure that should be >= min (or <= max when `atMost`). */
function verdict(value: number | null | undefined, bound: number, what: string, atMost = false): string {
  if (value == null || !Number.isFinite(value)) return `${what}: not measured`;
  const ok = atMost ? value <= bound : value >= bound;
  const off = atMost ? value / bound - 1 : 1 - value / bound;
  return `${what}: ${ok ? 'met' : `MISSED by ${(off * 100).toFixed(0)}%`}`;
}

// ---- throughput and FLOP/s ------------------------------------------------------------------------
if (want('throughput') || want('flops')) {
  const thr = await throughput({ quick, threads, tfjs: want('throughput') && !args['no-tfjs'], log });
  out.throughput = thr;
  if ('unavailable' in thr.torch) notes.push(`PyTorch peer skipped: ${thr.torch.unavailable}`);
  for (const r of thr.results) {
    const label = `${r.mode} img/s ${caseLabel(r.case)}`;
    const small = r.case.batch < 128;
    const t = small ? TARGETS.trainVsTorchB8 : TARGETS.trainVsTorchB128;
    const nat = r.native.median;
    const vsTorch = r.paired && median(r.paired);
    const spread = r.paired ? `pairs ${fmt(Math.min(...r.paired))}-${fmt(Math.max(...r.paired))}x` : '';
    row(label, nat, 'torch eager', r.torch?.median ?? null, r.mode === 'train' ? `${verdict(vsTorch, t, `>= ${t}x`)}; ${spread}` : spread, vsTorch);
    if (r.tfjs && 'skipped' in r.tfjs) row(label, nat, 'tfjs cpu', null, r.tfjs.skipped);
    else if (r.tfjs) {
      const how = r.tfjs.timedRuns === 0 ? '1 profiled run' : `median of ${r.tfjs.timedRuns} after 1`;
      row(label, nat, 'tfjs cpu', r.tfjs.median, `${verdict(nat / r.tfjs.median, TARGETS.vsTfjs, `>= ${TARGETS.vsTfjs}x`)} (${how})`);
    }
    if (r.cuda) row(`${label} cuda`, r.cuda.median, 'native cpu', nat);
  }
  const tf = thr.results.find((r) => r.tfjs && !('skipped' in r.tfjs) && r.mode === 'train')?.tfjs;
  if (tf && !('skipped' in tf)) {
    notes.push(`tfjs ${tf.version} '${tf.backend}' backend: pure JS, single-threaded (libtorch and torch use ${threads} threads); ` +
      `train-step kernel time: ${tf.kernels.map((k) => `${k.kernel} ${(k.share * 100).toFixed(0)}%`).join(', ')}.`);
  }
  notes.push('tfjs-node (native TensorFlow) cannot install offline and the wasm backend has no Conv2DBackpropFilter kernel, ' +
    'so the pure-JS CPU backend is the only tfjs that trains here. Its option-A shortcut is a 1x1 stride-2 average pool ' +
    '(= x[:, ::2, ::2]) + zero channel padding: the same parameter-free shortcut, no extra convolution.');

  if (want('flops')) {
    log('flops: matmul peak through libtorch (python torch)');
    const mm = torchPeer({ threads, matmul: { n: 2048, reps: 5 } });
    const peak = mm.ok ? mm.out.matmul : null;
    out.flops = { convention: '1 multiply-add = 2 FLOPs; convs + fc only; train step = 3x forward', peak: mm.ok ? peak : { unavailable: mm.why } };
    if (peak) {
      row(`matmul peak GFLOP/s (n=${peak.n}, ${threads} thr)`, peak.flops / 1e9, 'torch.mm (BLAS)', peak.blas_mm / 1e9,
        `peak via ${peak.via === 'onednn' ? "oneDNN inner product (libtorch's conv library)" : 'torch.mm'}, measured with ${PYTHON} torch`);
    } else notes.push(`matmul peak unavailable: ${mm.ok ? '' : mm.why}`);
    for (const r of thr.results.filter((x) => x.mode === 'train')) {
      const { arch, channels, size } = r.case;
      const perImage = cifarTrainFlops(arch, channels, size, CLASSES);
      const achieved = (r.native.median * perImage) / 1e9;
      const torchFrac = peak && r.torch ? (r.torch.median * perImage) / peak.flops : null;
      const note = r.case.batch >= 128 && peak
        ? `${verdict(achieved / (peak.flops / 1e9), TARGETS.flopFraction, `>= ${TARGETS.flopFraction * 100}% of peak`)}; torch ${fmt(torchFrac && torchFrac * 100)}%`
        : `torch ${fmt(torchFrac && torchFrac * 100)}% of peak`;
      row(`train GFLOP/s ${caseLabel(r.case)}`, achieved, 'matmul peak', peak ? peak.flops / 1e9 : null, note);
    }
    notes.push(`FLOPs: ${ARCH} forward = ${fmt(cifarForwardFlops(ARCH, 3, 32, CLASSES) / 1e6)} MFLOP/image at 32x32x3, ` +
      `${fmt(cifarForwardFlops(ARCH, 1, 28, CLASSES) / 1e6)} at 28x28x1 (1 multiply-add = 2 FLOPs, convs + fc; train step = 3x forward).`);
  }
}

// ---- profile ----------------------------------------------------------------------------------------
if (want('profile')) {
  const p = await profileStep({ quick, threads, log });
  out.profile = p;
  const { stepMs, augmentMs } = p.native;
  const [lo, hi] = [Math.min(...p.native.augmentPairsMs), Math.max(...p.native.augmentPairsMs)];
  row(`crop+flip gather ms/step ${caseLabel(p.case)}`, augmentMs, 'native step ms', stepMs,
    `native, paired runs ${fmt(lo)} to ${fmt(hi)} ms${lo < 0 && hi > 0 ? ': within noise' : ''}`);
  for (const l of p.channelsLast) {
    const t = l.case.batch < 128 ? TARGETS.trainVsTorchB8 : TARGETS.trainVsTorchB128;
    const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${fmt((a / b - 1) * 100)}%`;
    row(`train img/s ${caseLabel(l.case)} channels-last`, l.nativeChannelsLast, 'torch channels-last', l.torchChannelsLast,
      `${verdict(l.nativeChannelsLast / l.torchChannelsLast, t, `>= ${t}x`)}; channels-last vs NCHW: native ${pct(l.nativeChannelsLast, l.native)} ` +
      `(pairs ${fmt(Math.min(...l.nativePaired))}-${fmt(Math.max(...l.nativePaired))}x), torch ${pct(l.torchChannelsLast, l.torch)}`);
    row(`train img/s ${caseLabel(l.case)} channels-last`, l.nativeChannelsLast, 'torch NCHW', l.torch, `native NCHW ${fmt(l.native)} in the same alternation`);
  }
  if ('phases' in p.torch) {
    const pct = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ');
    notes.push(`Profile of one train step, ${caseLabel(p.case)}, PyTorch eager on the same libtorch as a proxy for native ` +
      `(torch step ${fmt(p.torch.step_ms)} ms, native ${fmt(stepMs)} ms):\n    phases (wall): ${pct(p.torch.phases)}\n` +
      `    ops (profiler self time): ${pct(p.torch.ops)}\n` +
      `    native, measured: random crop + flip adds ${fmt(augmentMs)} ms to a ${fmt(stepMs)} ms step.`);
  } else notes.push(`torch profile unavailable: ${p.torch.unavailable}`);
}

// ---- crossing ---------------------------------------------------------------------------------------
if (want('crossing')) {
  const c = await crossing({ quick, threads, log });
  out.crossing = c;
  const tiny = `${c.tiny.arch} ${caseLabel(c.tiny)}`;
  row(`µs per 1-step trainEpoch call (${tiny})`, c.native.perCall, 'torch 1-step run', c.torch.perCall, 'lower is better');
  row(`µs per step inside one ${c.stepsInCall}-step call`, c.native.perStepInCall, `torch ${c.stepsInCall}-step run`, c.torch.perStepInCall,
    'lower is better: libtorch work + per-op dispatch');
  row('crossing µs per call (call - step)', c.native.perCall - c.native.perStepInCall, '', null,
    'N-API checks, hand-off JS -> executor -> thread-safe function back, Promise, per-call setup', null);
  row(`event-loop lag p50 ms (${fmt(c.training.seconds)} s epoch)`, c.training.p50, 'idle loop', c.idle.p50, `beyond the ${c.resolutionMs} ms sampling interval`, null);
  row(`event-loop lag p99 ms (${fmt(c.training.seconds)} s epoch)`, c.training.p99, 'idle loop', c.idle.p99, `max ${fmt(c.training.max)} ms`, null);
}

// ---- merge ------------------------------------------------------------------------------------------
if (want('merge')) {
  const m = await mergeBench({ counts: [2, 10, 20], log });
  out.merge = m;
  const mb = (b: number) => b / 2 ** 20;
  for (const r of m.rows) {
    row(`merge GB/s, N_D=${r.n} ${m.arch}`, r.merge.gbps, 'read only', r.read.gbps, verdict(r.merge.gbps / r.read.gbps, TARGETS.mergeVsRead, 'within 2x of read'));
    row(`merge peak RSS MB, N_D=${r.n}`, mb(r.merge.maxRss), 'read only', mb(r.read.maxRss), `file ${fmt(mb(m.fileBytes))} MB; process start ${fmt(mb(r.merge.startRss))} MB`);
  }
  const [first, last] = [m.rows[0], m.rows[m.rows.length - 1]];
  const growth = last.merge.maxRss / first.merge.maxRss;
  row(`merge peak RSS N_D=${last.n} / N_D=${first.n}`, growth, '', null, verdict(growth, TARGETS.rssGrowth, `flat (<= ${TARGETS.rssGrowth}x)`, true), null);
  notes.push('Merge: files freshly written (page cache), so "read" is memory-speed decoding; a cold disk would slow both alike.');
}

// ---- btm overhead -----------------------------------------------------------------------------------
if (want('btm')) {
  const dirs = args.runs ?? [`${ROOT}runs`];
  const b = btmOverhead(dirs);
  out.btm = b;
  if (b.measured) {
    row('btm stage / pretrain stage (wall)', b.fraction, 'pretrain s', b.pretrainS,
      `${b.isDefaultPreset ? 'default preset' : 'NOT the default preset'}; btm incl. ${fmt(b.btmEvalS)} s of test-set evaluations; ${b.file}`, null);
  } else row('btm stage / pretrain stage (wall)', null, '', null, b.note, null);
}

if (want('btm-batched')) {
  // BTM fine-tunes + their evaluations, all members in one native call vs one after another (target <= 0.6x on CPU, <= 0.2x on CUDA)
  const results = [];
  const bound = device === 'cuda' ? TARGETS.btmBatchedCuda : TARGETS.btmBatchedCpu;
  for (const c of BTM_BATCHED_CASES) {
    const r = await btmBatchedCase(c, { epochs: quick ? 3 : 30, rounds: quick ? 1 : 2, log, device });
    results.push(r);
    const ok = r.ratio <= bound;
    row(`btm stage batched / sequential (wall), ${r.label}${device === 'cuda' ? ', cuda' : ''}`, Math.min(...r.batchedS), 'sequential s', Math.min(...r.sequentialS),
      `target <= ${bound}x: ${ok ? 'met' : 'MISSED'}; runs ${r.batchedS.map((x) => fmt(x)).join('/')} vs ${r.sequentialS.map((x) => fmt(x)).join('/')} s`);
  }
  out.btmBatched = results;
}

// ---- distributed (c10d Gloo on loopback): data-parallel 1 vs 2 ranks, all-reduce cost, BTM fan-out ---
if (want('distributed')) {
  const d = await distributedBench({ quick, log });
  out.distributed = d;
  const [one, two, twoOff] = d.dp;
  row(`data-parallel train img/s, ${d.label}, 2 ranks x 1 thread`, two.imagesPerSec, '1 rank x 1 thread', one.imagesPerSec);
  row('gradient all-reduce ms per step, 2 ranks', two.allreduceMs, 'step ms', two.stepMs, `${two.parameters} parameters`, two.allreduceMs / two.stepMs);
  row('SyncBatchNorm: step ms, 2 ranks, on', two.stepMs, 'off', twoOff.stepMs,
    `${fmt(two.stepMs - twoOff.stepMs)} ms per step for 2 all-reduces per BatchNorm layer; one 258-float all-reduce from JS ${fmt(two.smallAllreduceMs)} ms`, two.stepMs / twoOff.stepMs);
  row('BTM fan-out wall s, 4 members, 2 ranks', d.fanout[1].seconds, '1 rank s', d.fanout[0].seconds, `merge (one all-reduce) ${fmt(d.fanout[1].mergeSeconds)} s`);
}

// ---- sharing the CPU: btm-node beside a busy PyTorch process and beside another btm-node -----------
if (want('shared-cpu')) {
  const s = await sharedCpuBench({ quick, log });
  out.sharedCpu = s;
  for (const p of s.policies) {
    const seen = (r: { threads?: number[] }) => (r.threads ? `threads ${r.threads.join('/')}` : '');
    const t = p.besideTorch.imagesPerSec / p.alone.imagesPerSec;
    row(`shared CPU, ${p.policy}: train img/s beside a 2-thread PyTorch loop`, p.besideTorch.imagesPerSec, 'alone', p.alone.imagesPerSec,
      `${verdict(t, TARGETS.sharedCpu, `>= ${TARGETS.sharedCpu}x`)}; ${seen(p.besideTorch)}; PyTorch ${fmt(p.torchBeside.imagesPerSec)} img/s beside it vs ${fmt(s.torchAlone.imagesPerSec)} alone (${fmt(p.torchBeside.imagesPerSec / s.torchAlone.imagesPerSec)}x)`, t);
    const n = p.besideNode.imagesPerSec / p.alone.imagesPerSec;
    row(`shared CPU, ${p.policy}: train img/s beside a second btm-node`, p.besideNode.imagesPerSec, 'alone', p.alone.imagesPerSec,
      `${verdict(n, TARGETS.sharedCpu, `>= ${TARGETS.sharedCpu}x`)}; ${seen(p.besideNode)}; alone: median of ${p.alone.runs?.map((x) => fmt(x)).join('/')} img/s, ${seen(p.alone)}`, n);
  }
}

// ---- CUDA train throughput vs PyTorch eager on the same card ----------------------------------------
if (want('cuda')) {
  if (!cudaAvailable()) throw new Error("--only cuda: the addon sees no CUDA device");
  const cu = await cudaThroughput({ quick, threads, log });
  out.cuda = cu;
  if ('unavailable' in cu.torch) notes.push(`PyTorch peer skipped on CUDA: ${cu.torch.unavailable}`);
  for (const r of cu.results) {
    const spread = r.paired ? `pairs ${fmt(Math.min(...r.paired))}-${fmt(Math.max(...r.paired))}x` : '';
    const target = r.case.target ? `${verdict(r.ratio, TARGETS.cudaTrainVsTorch, `>= ${TARGETS.cudaTrainVsTorch}x`)}; ` : '';
    row(`cuda train img/s ${r.case.label}`, r.native.median, 'torch eager cuda', r.torch?.median ?? null, `${target}${spread}`, r.ratio);
  }
}

// ---- serving ----------------------------------------------------------------------------------------
if (want('serve')) {
  const s = await serveBench({ quick, threads, log });
  out.serve = s;
  const { batching: b, oneAtATime: one } = s;
  const load = `${b.requests} req x 1 img, ${b.concurrency} concurrent`;
  row(`serve req/s (${load}, maxBatch ${b.maxBatch})`, b.reqPerS, 'one-at-a-time queue', one.reqPerS, `${b.ok}/${b.requests} ok (peer ${one.ok}/${one.requests}); examples/serve.mjs on loopback`);
  row('serve p50 latency ms', b.p50, 'one-at-a-time queue', one.p50, 'lower is better');
  row('serve p99 latency ms', b.p99, 'one-at-a-time queue', one.p99, 'lower is better');
  const f1 = s.forward[0];
  for (const f of s.forward.filter((x) => x.batch > 1)) {
    row(`resnet20 eval ms/image, batch ${f.batch}`, f.msPerImage, 'batch 1', f1.msPerImage, `forward ${fmt(f.ms)} ms${f.batch === s.defaultMaxBatch ? ' (default maxBatch)' : ''}`);
  }
}

// ---- why targets are missed (from this run's own figures) -----------------------------------------
const missed = (prefix: string) => rows.some((r) => r.figure.startsWith(prefix) && r.note.includes('MISSED'));
if (missed('train img/s') && rows.some((r) => r.peer === 'torch eager' && r.note.includes('MISSED'))) {
  const p = out.profile as Awaited<ReturnType<typeof profileStep>> | undefined;
  const c = out.crossing as Awaited<ReturnType<typeof crossing>> | undefined;
  const ops = p && 'ops' in p.torch ? `conv + BatchNorm are ${fmt((p.torch.ops.conv + p.torch.ops.batchnorm) * 100)}% of the step's op time (profile)` : 'most of the step is conv + BatchNorm kernels';
  const dispatch = c ? `; per-op dispatch, the only work native removes, is small: tiny model inside a long call ${fmt(c.native.perStepInCall)} µs/step native vs ${fmt(c.torch.perStepInCall)} torch` : '';
  const cl = p?.channelsLast.map((l) => `native ${fmt(l.nativeChannelsLast / l.native)}x, torch ${fmt(l.torchChannelsLast / l.torch)}x at b${l.case.batch}`).join('; ');
  notes.push(`Why native ~= torch eager on the train step: both run the same libtorch kernels, and ${ops}${dispatch}. ` +
    `The spread of adjacent-run pairs is in the 'pairs' notes.${cl ? ` Channels-last over NCHW (--model.channelsLast): ${cl}.` : ''}`);
}
if (rows.some((r) => r.peer === 'tfjs cpu' && r.figure.startsWith('eval') && r.note.includes('MISSED'))) {
  notes.push("Why >= 300x tfjs holds for training but not evaluation: tfjs's forward conv is im2col + a blocked JS matmul; " +
    'its backward (Conv2DBackpropFilter, plain JS loops) is what makes a tfjs train step thousands of times slower.');
}
const mergeOut = out.merge as Awaited<ReturnType<typeof mergeBench>> | undefined;
if (mergeOut && missed('merge GB/s')) {
  const [a, , c] = mergeOut.rows;
  const perFile = c && (c.merge.seconds - mergeOut.rows[1].merge.seconds) / (c.n - mergeOut.rows[1].n);
  const fixed = perFile !== undefined ? a.merge.seconds - a.n * perFile : NaN;
  notes.push(`Why merge misses 2x of read at small N_D: a fixed cost of ~${fmt(fixed)} s per merge (the float64 -> float32 ` +
    `mean over every entry in StateAccumulator.result()), then ~${fmt(perFile)} s per file against ` +
    `${fmt(c ? c.read.seconds / c.n : NaN)} s to read one; it amortises as N_D grows.`);
}

// ---- output -----------------------------------------------------------------------------------------
const ratio = (x: number | null) => (x == null || !Number.isFinite(x) ? '-' : x >= 100 ? `${x.toFixed(0)}x` : `${x.toFixed(2)}x`);
const table = formatTable(
  [
    { key: 'figure', header: 'Figure' },
    { key: 'ours', header: 'btm-node', format: (v) => fmt(v), align: 'right' },
    { key: 'peer', header: 'Peer' },
    { key: 'peerValue', header: "Peer's", format: (v) => fmt(v), align: 'right' },
    { key: 'ratio', header: 'Ratio', format: ratio, align: 'right' },
    { key: 'note', header: 'Target / note' },
  ],
  rows as unknown as Record<string, unknown>[],
);
const seconds = (performance.now() - t0) / 1000;
console.log(`\nbtm-node bench${quick ? ' --quick' : ''}: ${machine.cpu}, ${machine.cores} cores, ${threads} threads, ` +
  `libtorch ${machine.libtorch}, Node ${machine.node}, ${machine.device}; ${seconds.toFixed(0)} s\n`);
console.log(table);
if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
if (busyWarning) console.log(`\n- ${busyWarning}.`);

mkdirSync(`${ROOT}bench/results`, { recursive: true });
const file = `${ROOT}bench/results/${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, `${JSON.stringify({ command: ['npm run bench --', ...process.argv.slice(2)].join(' '), quick, seconds, machine, targets: TARGETS, rows, notes, sections: out }, null, 2)}\n`);
console.log(`\nresults: ${file}`);
