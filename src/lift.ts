/**
 * LIFT (Shi et al. 2024, "Long-Tail Learning with Foundation Model: Heavy Fine-Tuning Hurts") on the
 * TypeScript side: the config of the lightweight fine-tune, attaching its modules (the native side is
 * native/models/peft.h), the cosine head initialised from class means of the frozen features, and
 * what a checkpoint records so that btm-node can load it back.
 */
import { z } from 'zod';
import { isViT, PEFT_MODULES, type Model, type PeftInfo, type PeftModuleName, type PeftOptions } from './model.js';
import type { Dataset } from './dataset.js';
import type { Normalization } from './model.js';
import type { StateDict } from './state-dict.js';

/** The modules a config's `lift.modules` defaults to: LIFT's AdaptFormer on a ViT; SSF + residual adapters on a ResNet. */
export function defaultLiftModules(arch: string): PeftModuleName[] {
  return isViT(arch) ? ['adaptformer'] : ['ssf', 'adapter'];
}

/** Modules that add tensors a plain model lacks (not merged at export): a loader must attach them first. */
export const UNMERGED_MODULES: readonly PeftModuleName[] = ['adaptformer', 'adapter'];

/** `lift.*` fields other than the schedule: which modules and which head. */
export const LiftModuleFields = {
  /** PEFT modules (default by family: ViT ['adaptformer'], ResNet ['ssf', 'adapter']). */
  modules: z.array(z.enum(PEFT_MODULES)).optional(),
  /** LoRA rank (used with 'lora'). */
  rank: z.number().int().min(1).max(4096).default(8),
  /** AdaptFormer width (default 2^max(0, floor(log2(C / (2 L))))). */
  bottleneck: z.number().int().min(1).max(65536).optional(),
  /** LIFT's cosine classifier (s cos(f, w_c)), or the linear one. */
  head: z.enum(['cosine', 'linear']).default('cosine'),
  cosineScale: z.number().min(1e-3).max(1e4).default(25),
  /** 'class-means': the head's rows start as the normalised class means of the frozen features (LIFT without a text tower). */
  headInit: z.enum(['class-means', 'keep']).default('class-means'),
};
const LiftModulesSchema = z.strictObject(LiftModuleFields);
export type LiftModules = z.output<typeof LiftModulesSchema>;

/** The setPeft options of a config's modules for an architecture. */
export function peftOptions(cfg: LiftModules, arch: string): PeftOptions {
  const modules = cfg.modules ?? defaultLiftModules(arch);
  return {
    modules,
    ...(modules.includes('lora') ? { rank: cfg.rank } : {}),
    ...(modules.includes('adaptformer') && cfg.bottleneck !== undefined ? { bottleneck: cfg.bottleneck } : {}),
    head: cfg.head,
    ...(cfg.head === 'cosine' ? { cosineScale: cfg.cosineScale } : {}),
  };
}

/** What a checkpoint's metadata records of the PEFT modules (ModelMeta.peft). */
export interface PeftMeta {
  modules: PeftModuleName[];
  rank?: number;
  bottleneck?: number;
  head: 'linear' | 'cosine';
  cosineScale?: number;
}

export function peftMeta(info: PeftInfo): PeftMeta {
  const { trainedParameters: _t, ...rest } = info;
  return rest;
}

/**
 * The setPeft options that rebuild a checkpoint's layout: only the modules that were not merged
 * (AdaptFormer, adapters) and the head; undefined when a plain model loads it.
 */
export function peftForLoading(meta: PeftMeta | undefined): PeftOptions | undefined {
  if (!meta) return undefined;
  const modules = meta.modules.filter((m) => UNMERGED_MODULES.includes(m));
  if (modules.length === 0 && meta.head !== 'cosine') return undefined;
  return {
    modules,
    ...(modules.includes('adaptformer') && meta.bottleneck !== undefined ? { bottleneck: meta.bottleneck } : {}),
    head: meta.head,
    ...(meta.head === 'cosine' && meta.cosineScale !== undefined ? { cosineScale: meta.cosineScale } : {}),
  };
}

/** Attaches what `meta` needs to `model` (a fresh one) before it loads the checkpoint's state. */
export function preparePeftModel(model: Model, meta: PeftMeta | undefined): void {
  const opts = peftForLoading(meta);
  if (opts && !model.peft) model.setPeft(opts);
}

/** The head's state-dict prefix. */
export function headPrefix(arch: string): string {
  return isViT(arch) ? 'heads.head.' : 'fc.';
}

/**
 * Per-class means of `features` ([n, D] row-major, labels[i] per row), each L2-normalised: the cosine
 * head's initial rows. A class with no sample gets a zero row (its cosine is then 0 for every image).
 */
export function normalizedClassMeans(features: Float32Array, labels: ArrayLike<number>, numClasses: number, dim: number): Float32Array {
  const sums = new Float64Array(numClasses * dim);
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    counts[c]++;
    for (let d = 0; d < dim; d++) sums[c * dim + d] += features[i * dim + d];
  }
  const out = new Float32Array(numClasses * dim);
  for (let c = 0; c < numClasses; c++) {
    if (counts[c] === 0) continue;
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += (sums[c * dim + d] / counts[c]) ** 2;
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[c * dim + d] = norm > 0 ? sums[c * dim + d] / counts[c] / norm : 0;
  }
  return out;
}

/**
 * Sets the head's rows to the normalised class means of the model's current (frozen) features over
 * `indices` of `dataset`, and its bias to zero. Returns the rows.
 */
export async function initHeadFromClassMeans(
  model: Model, dataset: Dataset, indices: Int32Array, labels: ArrayLike<number>,
  opts: { normalize?: Normalization; batchSize?: number } = {},
): Promise<Float32Array> {
  const { arch, numClasses } = model.info;
  const r = await model.evaluate(dataset, { indices, features: true, normalize: opts.normalize, batchSize: opts.batchSize });
  const dim = r.featureDim;
  const rows = normalizedClassMeans(r.features!, Array.from(indices, (i) => labels[i]), numClasses, dim);
  const prefix = headPrefix(arch);
  const state: StateDict = model.stateDict().map((e) => {
    if (e.name === `${prefix}weight`) return { ...e, data: rows.slice() };
    if (e.name === `${prefix}bias`) return { ...e, data: new Float32Array(numClasses) };
    return e;
  });
  model.loadStateDict(state);
  return rows;
}

/** The PEFT modules a checkpoint carries, in words: which were merged into the weights and which are stored by name. */
export function formatPeft(p: PeftMeta): string {
  const merged = p.modules.filter((m) => !UNMERGED_MODULES.includes(m));
  const named = p.modules.filter((m) => UNMERGED_MODULES.includes(m));
  const detail = (m: string) => (m === 'lora' && p.rank ? `lora (rank ${p.rank})` : m === 'adaptformer' && p.bottleneck ? `adaptformer (width ${p.bottleneck})` : m);
  return [
    merged.length ? `${merged.map(detail).join(', ')} merged into the weights` : '',
    named.length ? `${named.map(detail).join(', ')} stored as extra tensors (btm-node attaches them on load)` : '',
    p.head === 'cosine' ? `cosine head (scale ${p.cosineScale ?? 25}), stored as the linear head s W/|W|` : 'linear head',
  ].filter(Boolean).join('; ');
}
