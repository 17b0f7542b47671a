/**
 * A ResNet or a Vision Transformer on a device with its SGD optimizer: a typed face over the native
 * Model. Parameter and buffer names follow torchvision (`layer1.0.conv1.weight`, `bn1.running_var`,
 * `fc.weight`; `encoder.layers.encoder_layer_0.self_attention.in_proj_weight`, `heads.head.weight`).
 * Long work returns a Promise and runs off the JS thread; one call at a time per model.
 */
import { Dataset } from './dataset.js';
import type { Device } from './device.js';
import { native, type NativeEvalResult, type NativeModel, type NativeModelInfo, type NativeTrainResult } from './native.js';
import type { StateDict } from './state-dict.js';
import { processGroupHandle, type ProcessGroup } from './distributed/process-group.js';

export const ARCHS = [
  'resnet8', 'resnet20', 'resnet32', 'resnet56', 'resnet110',
  'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d',
  // Vision Transformers (native/models/vit.h): torchvision's, then 32x32 / patch-4 shapes for the CPU.
  'vit_b_16', 'vit_b_32', 'vit_l_16', 'vit_s_p4', 'vit_t_p4', 'vit_mini_p4',
] as const;
export type Arch = (typeof ARCHS)[number];

/** Whether `arch` is a Vision Transformer (no BatchNorm, classifier `heads.head`). */
export function isViT(arch: string): boolean {
  return arch.startsWith('vit_');
}

/**
 * torchvision before 0.13 named a ViT block's MLP linears `mlp.linear_1` / `mlp.linear_2`; 0.13 and
 * later (Debian bookworm's 0.14, trixie's 0.21) name them `mlp.0` / `mlp.3`, as btm-node does. Older
 * names are renamed on load, as torchvision's own loader does; every other name passes unchanged.
 */
export function renameLegacyViTKeys(state: StateDict): StateDict {
  const legacy = /^(encoder\.layers\.encoder_layer_\d+\.mlp\.)linear_([12])\.(weight|bias)$/;
  if (!state.some((e) => legacy.test(e?.name))) return state;
  return state.map((e) => {
    const m = typeof e?.name === 'string' ? legacy.exec(e.name) : null;
    return m ? { ...e, name: `${m[1]}${m[2] === '1' ? 0 : 3}.${m[3]}` } : e;
  });
}

export interface ModelOptions {
  arch: Arch;
  numClasses: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /**
   * When set, datasets must have images of exactly this height and width. A ViT is built for one
   * size (its positional embedding): it must be a multiple of the patch size, and defaults to the
   * architecture's (224 for vit_b_16, 32 for the *_p4 shapes).
   */
  imageSize?: number;
  device?: Device;
  /** Seeds the initial weights and every random draw of training (crops, flips, mixup). Default 0. */
  seed?: number;
}

/**
 * 'peft': the head and what setPeft chose (the rest of the trunk frozen); 'last-block': a ResNet's last
 * residual stage (layer3 of the CIFAR ResNets, layer4 of the ImageNet ones) and fc, every module before
 * it in eval mode while training (its BatchNorm statistics fixed).
 */
export type Trainable = 'all' | 'classifier' | 'backbone' | 'peft' | 'last-block';

export interface OptimizerOptions {
  /** Default 0.9. */
  momentum?: number;
  /** Default 5e-4 (applied to every trained parameter, as torch.optim.SGD does). */
  weightDecay?: number;
  nesterov?: boolean;
  /** Which parameters train: the whole model (default), only the classifier (`fc` / `heads.head`), or all but it. */
  trainable?: Trainable;
  /**
   * Learnable weight scaling (MiSLAS): a per-class logit scale, initialised to 1, trained with the
   * chosen parameters. stateDict() exports it folded into fc; setOptimizer without lws folds it for good.
   */
  lws?: boolean;
}

export interface PerformanceOptions {
  /** CUDA autocast: bf16, or fp16 with dynamic loss scaling (CUDA only). */
  amp?: 'none' | 'bf16' | 'fp16';
  /** Weights and inputs in channels-last (NHWC) memory format (CUDA; CPU: every model on libtorch 1.x, the CIFAR ResNets on 2.x, see README). */
  channelsLast?: boolean;
  /** cuDNN autotuning (CUDA only). */
  cudnnBenchmark?: boolean;
  /** fp16: the dynamic loss scale to start from (default 65536, as torch.cuda.amp.GradScaler). */
  lossScale?: number;
}

export interface Normalization {
  /** Per channel, on the [0,1] pixel scale. */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
}

export interface TrainOptions {
  /** One learning rate for every step, or one per step (length = number of steps). */
  lr: number | Float32Array | number[];
  /**
   * 'ce' (default): soft-target cross-entropy with the offsets / smoothing / mixup below.
   * 'gml': GML with logitOffsets = log class counts (no mixup, no smoothing).
   * 'bce': binary cross-entropy with logits, mean over the batch and the classes, on multi-hot targets
   * (a multi-label Dataset; needs it) or one-hot labels; mixup mixes the targets; logitOffsets give
   * logit-adjusted BCE, classWeights class-balanced BCE (src/pipeline/losses.ts computes both).
   */
  loss?: 'ce' | 'gml' | 'bce';
  /** Loss 'bce' only: a weight per class on that class's terms (default all 1). */
  classWeights?: Float32Array | number[];
  /** GML's p (default 1). */
  gmlPower?: number;
  batchSize?: number;
  dropLast?: boolean;
  /** Random crop after zero padding by this many pixels (0 = off). */
  cropPadding?: number;
  hflip?: boolean;
  normalize?: Normalization;
  /** Mixup Beta(alpha, alpha); 0 = off. */
  mixupAlpha?: number;
  /** Per-class offsets added to the logits inside the loss (balanced softmax: log prior; logit adjustment: tau*log prior). */
  logitOffsets?: Float32Array | number[];
  /** Per-class label smoothing eps_y (label-aware smoothing). */
  labelSmoothing?: Float32Array | number[];
  /** BatchNorm mode while training (default 'train'); independent of which parameters train. */
  bnMode?: 'train' | 'eval';
  /** MORE's rebalancing term (needs setLowRank). */
  more?: MoreTrainOptions;
  /** With a process group: this rank's share n_r / N of each step's global batch (one per step). */
  gradWeights?: Float32Array | number[];
  /**
   * With a process group: `indices` are the global order and batchSize the global batch; this rank
   * trains its part of every global batch (part r of W: rows [floor(r L / W), floor((r + 1) L / W)) of a
   * batch of L), its gradients weighted by the part's share. The random draws (crops, flips, mixup's
   * lambda and partners) are made for the whole global batch as one process makes them, and a part is
   * mixed with its partners wherever they are: with the same seed on every rank (manualSeed), the
   * ranks' parts are exactly the rows of the batch one process builds. Not with gradWeights.
   */
  globalBatch?: boolean;
}

/** Model.setProcessGroup's options. */
export interface DataParallelOptions {
  /**
   * BatchNorm in train mode normalises with the mean and variance of the global batch (all ranks'
   * parts: one small all-reduce per layer forward and one backward, as torch.nn.SyncBatchNorm), and
   * every rank's running statistics stay identical; false: each rank's own part (DDP without
   * SyncBatchNorm). Default true.
   */
  syncBatchNorm?: boolean;
}

/**
 * MORE's rebalancing term for a trainEpoch call (needs setLowRank): the step's loss becomes
 * base(z_full) + coefficient * mean_i w_i d(z_full_i, z_general_i), with w_i the class weight of the
 * sample's label (mixed like the labels under mixup) and d the squared l2 distance averaged over the
 * classes ('l2') or KL(softmax z_full || softmax z_general) ('kl'). See src/more.ts.
 */
export interface MoreTrainOptions {
  /** One coefficient for every step, or one per step (length = number of steps), >= 0. */
  coefficient: number | Float32Array | number[];
  /** One weight per class (src/more.ts: C times the class prior). */
  classWeights: Float32Array | number[];
  discrepancy?: 'l2' | 'kl';
  /** Gradients through the general path as well (default true); false computes it without gradients. */
  generalGrad?: boolean;
}

/** MORE's low-rank factors: W = W_g + B A on the chosen layers (B = 0 at first). */
export interface LowRankOptions {
  rank: number;
  /** Module paths or prefixes ('fc', 'layer3', 'layer3.0.conv1'); default every trained conv / linear layer. */
  layers?: string[];
}

/** Parameter-efficient fine-tuning modules (native/models/peft.h; the README's "LIFT" section). */
export const PEFT_MODULES = ['bitfit', 'norm', 'lora', 'ssf', 'adaptformer', 'adapter'] as const;
export type PeftModuleName = (typeof PEFT_MODULES)[number];

/** Model.setPeft: modules attached to the trunk, each an exact no-op at the start. */
export interface PeftOptions {
  /** ViT: bitfit, norm, lora, ssf, adaptformer; ResNet: bitfit, norm, ssf, adapter. */
  modules: PeftModuleName[];
  /** LoRA rank r on the attention's q and v (scaling 1/r); default 8, at most the width D. */
  rank?: number;
  /** AdaptFormer width; default 2^max(0, floor(log2(C / (2 L)))) as LIFT. */
  bottleneck?: number;
  /** 'cosine': s cos(f, w_c) with no bias (LIFT's head); default 'linear'. */
  head?: 'linear' | 'cosine';
  /** The cosine head's scale s (default 25). */
  cosineScale?: number;
}

/** What Model.peft reports. */
export interface PeftInfo {
  modules: PeftModuleName[];
  rank?: number;
  bottleneck?: number;
  head: 'linear' | 'cosine';
  cosineScale?: number;
  /** Elements of the tensors the current optimizer trains (head included). */
  trainedParameters: number;
}

export interface EvalOptions {
  /** Evaluate these samples only (default: the whole dataset in order). */
  indices?: Int32Array;
  batchSize?: number;
  normalize?: Normalization;
  logits?: boolean;
  features?: boolean;
  /** 'train' runs a train-mode forward without gradients: BatchNorm statistics update. Default 'eval'. */
  bnMode?: 'eval' | 'train';
  /**
   * Inference through a copy of the network with each BatchNorm folded into the convolution before
   * it: the same function in eval mode, faster. The trained weights and the state dict stay unfolded;
   * the folded copy is rebuilt after they change. Needs bnMode 'eval'. Default false. A ViT has no
   * BatchNorm: it evaluates unfolded (the same function), whatever this says.
   */
  foldBatchNorm?: boolean;
  /** With low-rank factors attached: 'full' (W_g + B A, default: what the model computes) or 'general' (W_g alone). */
  path?: 'full' | 'general';
}

export type TrainResult = NativeTrainResult;
export type EvalResult = NativeEvalResult;
export type ModelInfo = NativeModelInfo & { arch: Arch };

/** Array-likes become arrays for the binding; anything else goes through for it to reject by name. */
function normalization(n: Normalization | undefined): unknown {
  if (!n || typeof n !== 'object') return n;
  const list = (v: unknown) => (v && typeof v === 'object' && 'length' in v ? Array.from(v as ArrayLike<number>) : v);
  return { mean: list(n.mean), std: list(n.std) };
}

/** Array-likes become arrays for the binding, as for normalization. */
function moreOptions(m: MoreTrainOptions | undefined): unknown {
  if (!m || typeof m !== 'object') return m;
  const list = (v: unknown) => (v && typeof v === 'object' && 'length' in v && !(v instanceof Float32Array) ? Array.from(v as ArrayLike<number>) : v);
  return { ...m, coefficient: list(m.coefficient), classWeights: list(m.classWeights) };
}

function datasetHandle(dataset: Dataset, where: string) {
  if (!(dataset instanceof Dataset)) throw new TypeError(`${where}: dataset must be a Dataset, got ${describe(dataset)}`);
  return dataset.handle;
}

function options<T extends object>(o: T | undefined, where: string, required: boolean): T {
  if (o === undefined && !required) return {} as T;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new TypeError(`${where}: options must be an object, got ${describe(o)}`);
  return o;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v !== 'object') return String(v);
  const name = Object.getPrototypeOf(v)?.constructor?.name;
  return !name || name === 'Object' ? 'an object' : `a ${name}`;
}

export class Model implements Disposable {
  private readonly handle: NativeModel;

  constructor(options: ModelOptions) {
    this.handle = new (native().Model)(options);
  }

  get info(): ModelInfo {
    return this.handle.info as ModelInfo;
  }
  get disposed(): boolean {
    return this.handle.disposed;
  }
  /** True while a trainEpoch/evaluate call is running. */
  get busy(): boolean {
    return this.handle.busy;
  }

  /** Every parameter and buffer, in torchvision's state_dict order, as copies. */
  stateDict(): StateDict {
    return this.handle.stateDict();
  }

  /**
   * Strict: same names, shapes and dtypes; the error lists every difference. A ViT also takes the
   * MLP names of torchvision before 0.13 (see renameLegacyViTKeys).
   */
  loadStateDict(state: StateDict): void {
    const vit = Array.isArray(state) && !this.handle.disposed && isViT(this.handle.info.arch);
    this.handle.loadStateDict(vit ? renameLegacyViTKeys(state) : state);
  }

  /** Gradients of the trained parameters from the last step (copies). */
  gradients(): StateDict {
    return this.handle.gradients();
  }

  /** SGD momentum buffers, named `<param>.momentum_buffer`: save them with the weights to resume exactly. */
  optimizerState(): StateDict {
    return this.handle.optimizerState();
  }

  /** Loads momentum buffers for the parameters the current optimizer trains (strict). */
  loadOptimizerState(state: StateDict): void {
    this.handle.loadOptimizerState(state);
  }

  /** Restarts the model's random stream (crops, flips, mixup), e.g. per epoch for exact resumes. */
  manualSeed(seed: number): void {
    this.handle.manualSeed(seed);
  }

  /** Replaces the optimizer (momentum buffers start from zero) and sets which parameters train. */
  setOptimizer(options: OptimizerOptions = {}): void {
    this.handle.setOptimizer(options);
  }

  /**
   * Speed features: channelsLast (NHWC weights and batches, on CPU through oneDNN and on CUDA); amp and
   * cudnnBenchmark are CUDA-only and ignored with a warning on a CPU model.
   */
  setPerformance(opts: PerformanceOptions): void {
    this.handle.setPerformance(opts);
    const cudaOnly = (opts?.amp ?? 'none') !== 'none' || opts?.cudnnBenchmark;
    if (cudaOnly && this.handle.info.device === 'cpu') {
      process.emitWarning('btm-node: amp / cudnnBenchmark are CUDA-only and ignored on a CPU model');
    }
  }

  /**
   * Attaches MORE's low-rank factors (rank r; B = 0, so the model computes the same function) to the
   * trained convolution / linear layers; they train with the model's SGD. Call after setOptimizer.
   * stateDict() exports W_g + B A (the plain torchvision layout); mergeLowRank() makes that permanent.
   */
  setLowRank(options: LowRankOptions): void {
    this.handle.setLowRank(options);
  }

  /**
   * Data-parallel training over a process group (null: alone again): every trainEpoch step sums the
   * gradients over the ranks, each weighted by its share of the global batch (options.gradWeights, or
   * its part's share with options.globalBatch; default 1 / worldSize), before the SGD step. All ranks
   * must train the same number of steps. options.syncBatchNorm (default true): see DataParallelOptions.
   */
  setProcessGroup(group: ProcessGroup | null, options: DataParallelOptions = {}): void {
    if (group === null) this.handle.setProcessGroup(null);
    else this.handle.setProcessGroup(processGroupHandle(group, 'Model.setProcessGroup'), options);
  }

  /** Collective: every rank's model gets `root`'s weights, buffers and SGD momentum. */
  broadcastFrom(group: ProcessGroup, root = 0): Promise<void> {
    return processGroupHandle(group, 'Model.broadcastFrom').broadcastModel(this.handle, root);
  }

  /** Collective: BatchNorm running statistics become their mean over the ranks (data-parallel epoch end). */
  averageBuffers(group: ProcessGroup): Promise<void> {
    return processGroupHandle(group, 'Model.averageBuffers').averageBuffers(this.handle);
  }

  /** W_g += B A for good and the factors dropped (no-op without factors). */
  mergeLowRank(): void {
    this.handle.mergeLowRank();
  }

  /** The attached low-rank factors ({rank, layers}), or null. */
  get lowRank(): { rank: number; layers: string[] } | null {
    return this.handle.lowRank;
  }

  /**
   * Attaches PEFT modules (LIFT): LoRA / SSF swap effective weights in at forward time and are merged
   * into the exported state (stateDict() has the torchvision layout); AdaptFormer / adapters are
   * registered submodules exported as `...adaptformer.*` / `...adapter.weight`. Then
   * setOptimizer({trainable: 'peft'}) trains them and the head only. One set per model.
   */
  setPeft(options: PeftOptions): void {
    this.handle.setPeft(options);
  }

  /** The attached PEFT modules, or null. */
  get peft(): PeftInfo | null {
    return this.handle.peft as PeftInfo | null;
  }

  /** Trains over `indices` in order, in batches; returns the loss and batch accuracy of every step. */
  trainEpoch(dataset: Dataset, indices: Int32Array, opts: TrainOptions): Promise<TrainResult> {
    const where = 'Model.trainEpoch';
    const o = options(opts, where, true);
    return this.handle.trainEpoch(datasetHandle(dataset, where), indices, { ...o, normalize: normalization(o.normalize), more: moreOptions(o.more) });
  }

  /** Batched forward: predicted class per sample, and logits / penultimate features on request. */
  evaluate(dataset: Dataset, opts?: EvalOptions): Promise<EvalResult> {
    const where = 'Model.evaluate';
    const { indices, ...rest } = options(opts, where, false);
    return this.handle.evaluate(datasetHandle(dataset, where), indices ?? null, { ...rest, normalize: normalization(rest.normalize) });
  }

  /** Frees the weights and optimizer state now (throws while a call is running). */
  dispose(): void {
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
