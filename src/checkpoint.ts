/**
 * Checkpoints as safetensors with torchvision names, plus what is needed to rebuild and use the
 * model (architecture, classes, normalisation) in the file's `__metadata__`. A PyTorch user loads the
 * tensors with `safetensors.torch.load_file(path)` and `model.load_state_dict(...)`.
 * Training-state checkpoints (for resuming inside a stage) add the SGD momentum buffers under
 * `optimizer.<param>.momentum_buffer` and the epoch in the metadata.
 */
import type { Arch, Model } from './model.js';
import { readSafetensors, writeSafetensors, type Metadata } from './safetensors.js';
import type { StateDict } from './state-dict.js';

export const CHECKPOINT_FORMAT = 'btm-node/1';
const OPTIMIZER_PREFIX = 'optimizer.';

export interface ModelMeta {
  arch: Arch;
  numClasses: number;
  inChannels: number;
  /** Image side the model was trained on. */
  imageSize: number;
  /** Per-channel normalisation on the [0,1] scale, applied before the network. */
  normalize?: { mean: number[]; std: number[] };
  classNames?: string[];
}

export interface Checkpoint {
  state: StateDict;
  meta: ModelMeta;
  /** Other metadata (stage, epoch, ...). */
  metadata: Metadata;
}

function encodeMeta(meta: ModelMeta, extra: Metadata): Metadata {
  return { ...extra, format: CHECKPOINT_FORMAT, model: JSON.stringify(meta) };
}

export async function saveCheckpoint(file: string, model: Model, meta: ModelMeta, extra: Metadata = {}): Promise<void> {
  await writeSafetensors(file, model.stateDict(), encodeMeta(meta, extra));
}

/** Writes a merged or otherwise computed state with the model metadata. */
export async function saveState(file: string, state: StateDict, meta: ModelMeta, extra: Metadata = {}): Promise<void> {
  await writeSafetensors(file, state, encodeMeta(meta, extra));
}

export async function readCheckpoint(file: string): Promise<Checkpoint> {
  const { dict, metadata } = await readSafetensors(file);
  if (!metadata.model) {
    throw new Error(`${file}: no btm-node model metadata (__metadata__.model); was it written by btm-node? ` +
      'A plain torchvision state dict can be loaded with Model.loadStateDict after creating the model yourself.');
  }
  let meta: ModelMeta;
  try {
    meta = JSON.parse(metadata.model) as ModelMeta;
  } catch (e) {
    throw new Error(`${file}: __metadata__.model is not valid JSON: ${(e as Error).message}`);
  }
  const state = dict.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX));
  return { state, meta, metadata };
}

/** Weights + momentum buffers + epoch, to resume a stage after its last finished epoch. */
export async function saveTrainingState(file: string, model: Model, meta: ModelMeta, extra: Metadata): Promise<void> {
  const optimizer = model.optimizerState().map((e) => ({ ...e, name: OPTIMIZER_PREFIX + e.name }));
  await writeSafetensors(file, [...model.stateDict(), ...optimizer], encodeMeta(meta, extra));
}

/** Loads weights and momentum buffers written by saveTrainingState into a model whose optimizer is set. */
export async function loadTrainingState(file: string, model: Model): Promise<Metadata> {
  const { dict, metadata } = await readSafetensors(file);
  model.loadStateDict(dict.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX)));
  model.loadOptimizerState(
    dict.filter((e) => e.name.startsWith(OPTIMIZER_PREFIX)).map((e) => ({ ...e, name: e.name.slice(OPTIMIZER_PREFIX.length) })),
  );
  return metadata;
}
