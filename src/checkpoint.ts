/**
 * Checkpoints as safetensors with torchvision names, plus what is needed to rebuild and use the
 * model (architecture, classes, normalisation) in the file's `__metadata__`. A PyTorch user loads the
 * tensors with `safetensors.torch.load_file(path)` and `model.load_state_dict(...)`.
 * Training-state checkpoints (for resuming inside a stage) add the SGD momentum buffers under
 * `optimizer.<param>.momentum_buffer` and the epoch in the metadata.
 */
import { arg, is, type Check } from './args.js';
import { ARCHS, Model, PEFT_MODULES, type Arch } from './model.js';
import { peftMeta, type PeftMeta } from './lift.js';
import { readSafetensors, writeSafetensors, type Metadata, type SafetensorsContents } from './safetensors.js';
import type { StateDict } from './state-dict.js';

export const CHECKPOINT_FORMAT = 'btm-node/1';
/** Training-state checkpoints store SGD momentum buffers under this prefix. */
export const OPTIMIZER_PREFIX = 'optimizer.';

export interface ModelMeta {
  arch: Arch;
  numClasses: number;
  inChannels: number;
  /** Image side the model was trained on. */
  imageSize: number;
  /** Per-channel normalisation on the [0,1] scale, applied before the network. */
  normalize?: { mean: number[]; std: number[] };
  classNames?: string[];
  /** PEFT modules the model carried (src/lift.ts); AdaptFormer / adapters are attached before loading. */
  peft?: PeftMeta;
}

export interface Checkpoint {
  state: StateDict;
  meta: ModelMeta;
  /** Other metadata (stage, epoch, ...). */
  metadata: Metadata;
}

/** Checks a ModelMeta (the fields and their consistency); used for arguments and for files. */
export const checkModelMeta: Check<ModelMeta> = (v, what) => {
  const meta = is.object({
    arch: is.oneOf(ARCHS),
    numClasses: is.integer({ min: 1 }),
    inChannels: is.integer({ min: 1 }),
    imageSize: is.integer({ min: 1 }),
    normalize: is.optional(is.object({ mean: is.array(is.number()), std: is.array(is.number()) })),
    classNames: is.optional(is.array(is.string())),
    peft: is.optional(is.object({
      modules: is.array(is.oneOf(PEFT_MODULES)),
      rank: is.optional(is.integer({ min: 1 })),
      bottleneck: is.optional(is.integer({ min: 1 })),
      head: is.oneOf(['linear', 'cosine'] as const),
      cosineScale: is.optional(is.number()),
    })),
  })(v, what) as ModelMeta;
  const { normalize: norm, inChannels, classNames, numClasses } = meta;
  if (norm && (norm.mean.length !== inChannels || norm.std.length !== inChannels)) {
    throw new RangeError(`${what}.normalize: mean and std need ${inChannels} value(s) (inChannels), got ${norm.mean.length} and ${norm.std.length}`);
  }
  if (norm && norm.std.some((x) => !(x > 0))) throw new RangeError(`${what}.normalize.std must be > 0, got [${norm.std}]`);
  if (classNames && classNames.length !== numClasses) {
    throw new RangeError(`${what}.classNames has ${classNames.length} names for numClasses = ${numClasses}`);
  }
  return meta;
};

const EXTRA = is.optional((v, what) => {
  is.object({}, { extra: true })(v, what);
  for (const [k, x] of Object.entries(v as object)) is.string()(x, `${what}.${k}`);
  return v as Metadata;
});

function encodeMeta(meta: ModelMeta, extra: Metadata): Metadata {
  return { ...extra, format: CHECKPOINT_FORMAT, model: JSON.stringify(meta) };
}

export async function saveCheckpoint(file: string, model: Model, meta: ModelMeta, extra: Metadata = {}): Promise<void> {
  const fn = 'saveCheckpoint';
  arg(fn, 'file', file, is.path());
  arg(fn, 'model', model, is.instance(Model));
  arg(fn, 'meta', meta, checkModelMeta);
  arg(fn, 'extra', extra, EXTRA);
  const peft = model.peft;
  await writeSafetensors(file, model.stateDict(), encodeMeta(peft ? { ...meta, peft: peftMeta(peft) } : meta, extra));
}

/** Writes a merged or otherwise computed state with the model metadata. */
export async function saveState(file: string, state: StateDict, meta: ModelMeta, extra: Metadata = {}): Promise<void> {
  arg('saveState', 'meta', meta, checkModelMeta);
  arg('saveState', 'extra', extra, EXTRA);
  await writeSafetensors(file, state, encodeMeta(meta, extra)); // checks file and state
}

/** Parses and checks `__metadata__.model` of `file`; errors name the file and the field. */
function decodeMeta(file: string, metadata: Metadata): ModelMeta {
  if (!metadata.model) {
    throw new Error(`${file}: no btm-node model metadata (__metadata__.model); was it written by btm-node? ` +
      'A plain torchvision- or timm-named state dict loads with loadModel(file, { arch }) or as --model.init (model.initFormat auto, torchvision or timm).');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata.model);
  } catch (e) {
    throw new Error(`${file}: __metadata__.model is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return checkModelMeta(parsed, `${file}: __metadata__.model`);
  } catch (e) {
    throw new Error((e as Error).message); // bad content of a file, not a wrong argument
  }
}

export async function readCheckpoint(file: string): Promise<Checkpoint> {
  arg('readCheckpoint', 'file', file, is.path());
  return checkpointFromContents(file, await readSafetensors(file));
}

/** readCheckpoint of a file already read (its tensors and metadata). */
export function checkpointFromContents(file: string, { dict, metadata }: Pick<SafetensorsContents, 'dict' | 'metadata'>): Checkpoint {
  const meta = decodeMeta(file, metadata);
  const state = dict.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX));
  return { state, meta, metadata };
}

/** What `btm info` shows about a safetensors file: the model it holds and how it was stored. */
export interface CheckpointSummary {
  file: string;
  /** 'btm-node/1' for btm-node checkpoints; undefined for other safetensors files. */
  format?: string;
  arch?: Arch;
  numClasses?: number;
  inChannels?: number;
  imageSize?: number;
  normalize?: { mean: number[]; std: number[] };
  classNames?: string[];
  /** PEFT modules the checkpoint carries (LoRA / SSF / BitFit / norm merged in; AdaptFormer / adapters by name). */
  peft?: PeftMeta;
  /** The pipeline stage that wrote it (pretrain, fc, btm-member, btm-merge, posttrain, merge, ...). */
  stage?: string;
  /** Metadata entries other than format, model and stage. */
  metadata: Metadata;
  tensors: number;
  /** Trained float parameters (BatchNorm running statistics and optimizer buffers excluded). */
  parameters: number;
  /** Tensors per stored dtype, e.g. { F32: 60, I64: 19 }. */
  dtypes: Record<string, number>;
  /** True when the file also holds SGD momentum buffers (a training-state checkpoint). */
  optimizerState: boolean;
  /** Why the btm-node fields are missing, for a plain (e.g. PyTorch) safetensors file. */
  note?: string;
}

/**
 * Reads a safetensors file's model description. Unlike readCheckpoint it also accepts files without
 * btm-node metadata (then only the tensor figures and a note), so a converted PyTorch file can be inspected.
 */
export async function checkpointSummary(file: string): Promise<CheckpointSummary> {
  arg('checkpointSummary', 'file', file, is.path());
  const { dict, metadata, fileDtypes } = await readSafetensors(file);
  const { format, model: _model, stage, ...rest } = metadata;
  const weights = dict.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX));
  const dtypes: Record<string, number> = {};
  for (const e of dict) dtypes[fileDtypes[e.name]] = (dtypes[fileDtypes[e.name]] ?? 0) + 1;
  const summary: CheckpointSummary = {
    file,
    format,
    stage,
    metadata: rest,
    tensors: weights.length,
    parameters: weights.filter((e) => e.dtype === 'float32' && !/running_(mean|var)$/.test(e.name)).reduce((s, e) => s + e.data.length, 0),
    dtypes,
    optimizerState: weights.length < dict.length,
  };
  if (metadata.model === undefined) {
    return { ...summary, note: 'no btm-node model metadata: architecture, classes and normalisation are unknown' };
  }
  const meta = decodeMeta(file, metadata);
  return { ...summary, arch: meta.arch, numClasses: meta.numClasses, inChannels: meta.inChannels, imageSize: meta.imageSize, normalize: meta.normalize, classNames: meta.classNames, peft: meta.peft };
}

/** Weights + momentum buffers + epoch, to resume a stage after its last finished epoch. */
export async function saveTrainingState(file: string, model: Model, meta: ModelMeta, extra: Metadata): Promise<void> {
  const optimizer = model.optimizerState().map((e) => ({ ...e, name: OPTIMIZER_PREFIX + e.name }));
  const peft = model.peft;
  await writeSafetensors(file, [...model.stateDict(), ...optimizer], encodeMeta(peft ? { ...meta, peft: peftMeta(peft) } : meta, extra));
}

/** Loads weights and momentum buffers written by saveTrainingState into a model whose optimizer is set. */
export async function loadTrainingState(file: string, model: Model): Promise<Metadata> {
  arg('loadTrainingState', 'model', model, is.instance(Model));
  const { dict, metadata } = await readSafetensors(file);
  model.loadStateDict(dict.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX)));
  model.loadOptimizerState(
    dict.filter((e) => e.name.startsWith(OPTIMIZER_PREFIX)).map((e) => ({ ...e, name: e.name.slice(OPTIMIZER_PREFIX.length) })),
  );
  return metadata;
}
