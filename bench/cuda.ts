/**
 * CUDA train throughput (images/s): btm-node native against PyTorch eager on the same card, run by run
 * alternated (bench/common.ts alternate), same work per step: gather a uint8 batch already on the GPU,
 * to float, normalise, forward (autocast when asked), cross-entropy, backward, SGD momentum 0.9 wd 5e-4;
 * cuDNN autotuning on for both. PyTorch's ImageNet-style models are torchvision's own; its SGD is
 * torch.optim.SGD's default (foreach on CUDA), its fp16 path torch.cuda.amp.GradScaler.
 * Target (issue 8): >= 1.0x PyTorch eager for resnet32 32x32x3 b128 and resnet50 224x224x3 b64 bf16 +
 * channels_last.
 */
import { Dataset, Model, type Arch } from '../src/index.js';
import { alternate, median, randomImages, shuffled, TorchServer, wallSeconds, type Case, type Timed } from './common.js';

export interface CudaCase extends Case {
  label: string;
  amp: 'none' | 'bf16' | 'fp16';
  channelsLast: boolean;
  /** The target applies (>= 1.0x torch eager). */
  target: boolean;
}

export function cudaCases(quick: boolean): CudaCase[] {
  const runs = { warmup: quick ? 1 : 2, reps: quick ? 3 : 7 };
  return [
    { label: 'resnet32 32x32x3 b128 fp32', arch: 'resnet32', channels: 3, size: 32, batch: 128, classes: 10, steps: 40, amp: 'none', channelsLast: false, target: true, ...runs },
    { label: 'resnet32 32x32x3 b128 bf16 channels-last', arch: 'resnet32', channels: 3, size: 32, batch: 128, classes: 10, steps: 40, amp: 'bf16', channelsLast: true, target: false, ...runs },
    { label: 'resnet20 28x28x1 b32 fp32 (a BTM fine-tune step)', arch: 'resnet20', channels: 1, size: 28, batch: 32, classes: 10, steps: 80, amp: 'none', channelsLast: false, target: false, ...runs },
    { label: 'resnet50 224x224x3 b64 bf16 channels-last', arch: 'resnet50', channels: 3, size: 224, batch: 64, classes: 1000, steps: quick ? 6 : 16, amp: 'bf16', channelsLast: true, target: true, ...runs },
  ];
}

export interface CudaResult {
  case: CudaCase;
  native: Timed;
  torch?: Timed;
  /** native/torch of each adjacent pair of runs. */
  paired?: number[];
  ratio: number | null;
}

async function one(c: CudaCase, server: TorchServer | undefined): Promise<CudaResult> {
  const n = c.batch * c.steps;
  const data = new Dataset(randomImages(n, c.channels, c.size, c.classes), 'cuda');
  const model = new Model({ arch: c.arch as Arch, numClasses: c.classes, inChannels: c.channels, device: 'cuda', seed: 0 });
  try {
    model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
    model.setPerformance({ amp: c.amp, channelsLast: c.channelsLast, cudnnBenchmark: true });
    const indices = shuffled(n);
    const normalize = { mean: Array(c.channels).fill(0.5), std: Array(c.channels).fill(0.25) };
    const fns = [wallSeconds(() => model.trainEpoch(data, indices, { lr: 0.01, batchSize: c.batch, normalize }))];
    const id = `cuda ${c.label}`;
    if (server) {
      await server.ask({
        op: 'prepare', id, mode: 'train',
        case: { arch: c.arch, channels: c.channels, size: c.size, batch: c.batch, steps: c.steps, classes: c.classes, warmup: 0, reps: 0,
          device: 'cuda', amp: c.amp, channels_last: c.channelsLast, cudnn_benchmark: true },
      });
      fns.push(async () => (await server.ask({ op: 'run', id })).seconds);
    }
    const [ours, theirs] = (await alternate(fns, c.warmup, c.reps)).map((secs) => secs.map((s) => n / s));
    await server?.ask({ op: 'close', id });
    const timed = (rates: number[]): Timed => ({ rates, median: median(rates) });
    const paired = theirs && ours.map((x, i) => x / theirs[i]);
    return { case: c, native: timed(ours), torch: theirs && timed(theirs), paired, ratio: paired ? median(paired) : null };
  } finally {
    model.dispose();
    data.dispose();
  }
}

/** Every case; the PyTorch peer runs on the GPU too (BTM_PYTHON picks the Python with CUDA torch). */
export async function cudaThroughput(opts: { quick: boolean; threads: number; log: (s: string) => void }) {
  const server = await TorchServer.start(opts.threads);
  const peer = server instanceof TorchServer ? server : undefined;
  const results: CudaResult[] = [];
  try {
    for (const c of cudaCases(opts.quick)) {
      opts.log(`cuda: native ${peer ? '+ torch ' : ''}train ${c.label}`);
      results.push(await one(c, peer));
    }
  } finally {
    peer?.close();
  }
  return { results, torch: peer ? peer.info : (server as { unavailable: string }) };
}
