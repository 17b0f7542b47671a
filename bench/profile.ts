/**
 * Where one train step's time goes. native/ has no op-level instrumentation, so libtorch's op costs
 * come from the PyTorch profiler on the same network and step (bench/torch_peer.py, same libtorch):
 * a proxy for native. The native data-gather cost is measured directly: the same epoch with and without
 * random crop + flip (which adds a per-sample gather on the batch), runs alternated and differenced in
 * pairs. It also times the train step in channels-last layout (oneDNN's NHWC path), native and torch,
 * against NCHW: native's two layouts alternated run by run, torch's inside its own process.
 */
import { alternate, median, torchPeer, wallSeconds } from './common.js';
import { ARCH, CLASSES, nativeRunner } from './native-vs-peers.js';

export async function profileStep(opts: { quick: boolean; threads: number; log: (s: string) => void }) {
  const c = { arch: ARCH, channels: 3, size: 32, batch: 128, steps: 4, warmup: 1, reps: opts.quick ? 3 : 7, classes: CLASSES };
  opts.log('profile: torch profiler on one step (proxy for libtorch op costs)');
  const b8 = { ...c, batch: 8, steps: 48 };
  const layouts = [c, { ...c, channels_last: true }, b8, { ...b8, channels_last: true }];
  const peer = torchPeer({ threads: opts.threads, profile: c, train: layouts });
  opts.log('profile: native epoch NCHW and channels-last, alternated');
  const layoutRates: { nchw: number; channelsLast: number; paired: number[] }[] = [];
  for (const lc of [c, b8]) {
    using nchw = nativeRunner(lc, 'train');
    using nhwc = nativeRunner(lc, 'train', 'cpu', {}, { channelsLast: true });
    const secs = await alternate([wallSeconds(nchw.run), wallSeconds(nhwc.run)], lc.warmup, lc.reps);
    const [a, b] = secs.map((ss) => ss.map((x) => (lc.batch * lc.steps) / x));
    layoutRates.push({ nchw: median(a), channelsLast: median(b), paired: b.map((x, i) => x / a[i]) });
  }
  opts.log('profile: native epoch with and without crop + flip');
  using plainRun = nativeRunner(c, 'train');
  using augRun = nativeRunner(c, 'train', 'cpu', { cropPadding: 4, hflip: true });
  const [plainS, augS] = await alternate([wallSeconds(plainRun.run), wallSeconds(augRun.run)], c.warmup, c.reps);
  const stepMs = median(plainS.map((s) => (1000 * s) / c.steps));
  const augmentPairsMs = augS.map((s, i) => (1000 * (s - plainS[i])) / c.steps); // paired: robust to drift
  return {
    case: c,
    torch: peer.ok ? peer.out.profile : { unavailable: peer.why },
    channelsLast: peer.ok
      ? [0, 2].map((i) => ({
        case: layouts[i], native: layoutRates[i / 2].nchw, nativeChannelsLast: layoutRates[i / 2].channelsLast,
        nativePaired: layoutRates[i / 2].paired, torch: peer.out.train[i].median, torchChannelsLast: peer.out.train[i + 1].median,
      }))
      : [],
    native: { stepMs, augmentMs: median(augmentPairsMs), augmentPairsMs },
  };
}
