/**
 * Checkpoints from the PyTorch world: a plain safetensors state dict (no btm-node metadata) with
 * torchvision's or timm's parameter names, converted to the layout of a btm-node model.
 *
 * - torchvision: btm-node's own names (ResNets: `conv1`, `layer1.0.conv1`, `fc`; ViTs: `class_token`,
 *   `conv_proj`, `encoder.layers.encoder_layer_N.*`, `heads.head`), taken as they are.
 * - timm: ResNets (timm/models/resnet.py: `conv1`, `bn1`, `layerK.i.{conv1,bn1,conv2,bn2,conv3,bn3,
 *   downsample.0,downsample.1}`, `fc`) already have torchvision's names, so they pass unchanged. ViTs
 *   (`vit_*_patch16/32_*`, deit_*) are renamed by TIMM_VIT_NAMES below.
 *
 * Then each parameter of the model is matched; where shapes differ, only these are converted:
 * the first convolution of a 3-channel checkpoint for a model with other input channels (as timm's
 * adapt_input_conv: 1 channel = the sum of the RGB filters; C channels = the RGB filters repeated and
 * scaled by 3 / C); a classifier head for another number of classes, or none, leaves the model's own
 * (freshly initialised) head when the caller allows it; a missing BatchNorm `num_batches_tracked` is
 * set to 0. Anything else that does not match is an error listing the unmatched names of the file and
 * the missing names of the model (the first few of each and their counts).
 */
import { checkpointFromContents, OPTIMIZER_PREFIX, type Checkpoint } from './checkpoint.js';
import type { Arch } from './model.js';
import { isViT, renameLegacyViTKeys } from './model.js';
import { closeSync, openSync, readSync } from 'node:fs';
import { readSafetensors } from './safetensors.js';
import type { StateDict, StateEntry } from './state-dict.js';

export const INIT_FORMATS = ['auto', 'btm-node', 'torchvision', 'timm'] as const;
export type InitFormat = (typeof INIT_FORMATS)[number];
/** The layout of a plain state dict's names. */
export type NameLayout = 'torchvision' | 'timm';

/**
 * timm ViT name -> torchvision name. timm's names are read from huggingface/pytorch-image-models
 * (commit aa4b585): timm/models/vision_transformer.py (VisionTransformer.__init__: `cls_token`,
 * `pos_embed`, `patch_embed`, `blocks` of `Block`: `norm1`, `attn`, `norm2`, `mlp`; then `norm`,
 * `head`), timm/layers/patch_embed.py (PatchEmbed: `proj`, a Conv2d), timm/layers/attention.py
 * (Attention: `qkv`, one Linear of q, k, v stacked in that order as torchvision's `in_proj_weight`;
 * `proj`) and timm/layers/mlp.py (Mlp: `fc1`, `act`, `fc2`). The shapes are torchvision's:
 * cls_token [1, 1, D], pos_embed [1, 1 + N, D], qkv [3D, D], LayerNorm eps 1e-6 in both.
 */
export const TIMM_VIT_NAMES: readonly (readonly [RegExp, string])[] = [
  [/^cls_token$/, 'class_token'],
  [/^pos_embed$/, 'encoder.pos_embedding'],
  [/^patch_embed\.proj\.(weight|bias)$/, 'conv_proj.$1'],
  [/^blocks\.(\d+)\.norm1\.(weight|bias)$/, 'encoder.layers.encoder_layer_$1.ln_1.$2'],
  [/^blocks\.(\d+)\.attn\.qkv\.weight$/, 'encoder.layers.encoder_layer_$1.self_attention.in_proj_weight'],
  [/^blocks\.(\d+)\.attn\.qkv\.bias$/, 'encoder.layers.encoder_layer_$1.self_attention.in_proj_bias'],
  [/^blocks\.(\d+)\.attn\.proj\.(weight|bias)$/, 'encoder.layers.encoder_layer_$1.self_attention.out_proj.$2'],
  [/^blocks\.(\d+)\.norm2\.(weight|bias)$/, 'encoder.layers.encoder_layer_$1.ln_2.$2'],
  [/^blocks\.(\d+)\.mlp\.fc1\.(weight|bias)$/, 'encoder.layers.encoder_layer_$1.mlp.0.$2'],
  [/^blocks\.(\d+)\.mlp\.fc2\.(weight|bias)$/, 'encoder.layers.encoder_layer_$1.mlp.3.$2'],
  [/^norm\.(weight|bias)$/, 'encoder.ln.$1'],
  [/^head\.(weight|bias)$/, 'heads.head.$1'],
];

/** timm ViT tensors btm-node's ViT has no place for, and what they are (for the error). */
const TIMM_HINTS: readonly (readonly [RegExp, string])[] = [
  [/^norm_pre\./, "timm's pre-norm after the embedding (pre_norm=True, CLIP models): btm-node's ViT has no such layer"],
  [/^fc_norm\./, "timm's norm after average pooling (global_pool='avg'): btm-node's ViT pools the class token"],
  [/^reg_token$/, "timm's register tokens (reg_tokens > 0): not in btm-node's ViT"],
  [/^dist_token$|^head_dist\./, "DeiT's distillation token and head: not in btm-node's ViT"],
  [/\.ls[12]\.gamma$/, "timm's LayerScale (init_values set): not in btm-node's ViT"],
  [/\.attn\.[qk]_norm\./, "timm's q/k normalisation (qk_norm=True): not in btm-node's ViT"],
  [/^attn_pool\./, "timm's attention pooling head (global_pool='map'): not in btm-node's ViT"],
];

/** The torchvision name of a timm ViT tensor, or undefined when the map has none. */
export function timmVitName(name: string): string | undefined {
  for (const [re, to] of TIMM_VIT_NAMES) if (re.test(name)) return name.replace(re, to);
  return undefined;
}

/**
 * Which layout a plain state dict's names follow: timm when it has timm's ViT names (`cls_token`,
 * `pos_embed`, `patch_embed.*`, `blocks.N.*`), torchvision otherwise (timm's ResNets included: the
 * same names).
 */
export function detectLayout(names: readonly string[]): NameLayout {
  return names.some((n) => /^(cls_token|pos_embed|patch_embed\.|blocks\.\d+\.)/.test(n)) ? 'timm' : 'torchvision';
}

/** Renames a state dict from `layout` to torchvision's names (a timm ResNet keeps its names). Unmapped names pass unchanged. */
export function toTorchvisionNames(dict: StateDict, layout: NameLayout, arch: Arch): StateDict {
  if (layout === 'torchvision' || !isViT(arch)) return dict;
  return dict.map((e) => {
    const to = timmVitName(e.name);
    return to ? { ...e, name: to } : e;
  });
}

/** The model's first convolution (input channels) and its classifier's tensors. */
function firstConv(arch: Arch): string {
  return isViT(arch) ? 'conv_proj.weight' : 'conv1.weight';
}
function headNames(arch: Arch): string[] {
  const p = isViT(arch) ? 'heads.head.' : 'fc.';
  return [`${p}weight`, `${p}bias`];
}

export interface ImportOptions {
  /** The checkpoint's file (for messages). */
  file: string;
  arch: Arch;
  /** The names in the file were read as this layout. */
  layout: NameLayout;
  /**
   * 'keep-model': a head for another number of classes, or none, leaves the model's head (a
   * foundation model's ImageNet head for a 10-class task); 'require': the head must match.
   */
  head: 'keep-model' | 'require';
}

export interface ImportResult {
  /** The model's layout and order, the file's values where they matched (converted as noted). */
  state: StateDict;
  /** One line per conversion (input channels, head kept, num_batches_tracked set). */
  notes: string[];
}

const LIST = 8;
function listNames(names: string[]): string {
  return names.slice(0, LIST).map((n) => `'${n}'`).join(', ') + (names.length > LIST ? `, ... (${names.length - LIST} more)` : '');
}

/**
 * Matches `dict` (a plain checkpoint, already renamed to torchvision's names) to `model` (the model's
 * state: names, shapes, and the values kept where the file has none). Throws an Error listing the
 * unmatched and missing names, and the shape mismatches, when they do not match.
 */
export function importState(dict: StateDict, model: StateDict, opts: ImportOptions): ImportResult {
  const { file, arch, layout } = opts;
  const byName = new Map<string, StateEntry>();
  for (const e of dict) byName.set(e.name, e);
  const used = new Set<string>();
  const heads = headNames(arch);
  const notes: string[] = [];
  const missing: string[] = [];
  const mismatched: string[] = [];
  const out: StateDict = [];
  let headKept = false;
  const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
  for (const want of model) {
    const got = byName.get(want.name);
    if (got) used.add(want.name);
    if (got && sameShape(got.shape, want.shape) && got.dtype === want.dtype) {
      out.push({ name: want.name, shape: [...want.shape], dtype: want.dtype, data: got.data });
      continue;
    }
    if (heads.includes(want.name) && opts.head === 'keep-model') {
      headKept = true;
      out.push(want);
      continue;
    }
    if (!got && want.name.endsWith('.num_batches_tracked')) {
      notes.push(`${want.name}: not in the file, set to 0`);
      out.push({ ...want, data: new BigInt64Array(1) });
      continue;
    }
    if (!got) {
      missing.push(want.name);
      continue;
    }
    if (want.name === firstConv(arch) && got.dtype === 'float32' && got.shape.length === 4 && want.shape.length === 4 &&
        got.shape[1] === 3 && got.shape[0] === want.shape[0] && got.shape[2] === want.shape[2] && got.shape[3] === want.shape[3]) {
      out.push({ name: want.name, shape: [...want.shape], dtype: 'float32', data: adaptInputConv(got.data as Float32Array, got.shape, want.shape[1]) });
      notes.push(`${want.name}: ${want.shape[1]} input channel(s) from the file's 3 ` +
        (want.shape[1] === 1 ? '(the sum of the RGB filters, as timm)' : `(the RGB filters repeated, times 3/${want.shape[1]}, as timm)`));
      continue;
    }
    const hint = want.name === 'encoder.pos_embedding'
      ? ' (a checkpoint for another image size or patch: resampling the position embedding is not supported)'
      : '';
    mismatched.push(`'${want.name}': ${shape(got.shape)} ${got.dtype} in the file, the model needs ${shape(want.shape)} ${want.dtype}${hint}`);
  }
  if (headKept) {
    const fileHead = byName.get(heads[0]);
    notes.push(fileHead
      ? `the file's head (${heads[0]} ${shape(fileHead.shape)}) is for another number of classes: the model's own head is kept`
      : `the file has no head (${heads[0]}): the model's own head is kept`);
  }
  const unmatched = dict.map((e) => e.name).filter((n) => !used.has(n));
  if (unmatched.length || missing.length || mismatched.length) {
    const parts = [`${file}: the ${layout}-named checkpoint does not match ${arch}`];
    if (unmatched.length) {
      parts.push(`${unmatched.length} tensor name(s) of the file match no parameter of the model: ${listNames(unmatched)}`);
      // unmapped names keep the file's spelling: timm's extras are recognised by it
      const hints = [...new Set(unmatched.flatMap((n) => TIMM_HINTS.filter(([re]) => re.test(n)).map(([, h]) => h)))];
      if (hints.length) parts.push(`(${hints.join('; ')})`);
    }
    if (missing.length) parts.push(`${missing.length} parameter(s) of the model are not in the file: ${listNames(missing)}`);
    if (mismatched.length) parts.push(`${mismatched.length} shape mismatch(es): ${mismatched.slice(0, LIST).join('; ')}${mismatched.length > LIST ? `; ... (${mismatched.length - LIST} more)` : ''}`);
    if (layout === 'torchvision' && detectLayout(unmatched) === 'timm') {
      parts.push("the names are read as torchvision's but look like timm's: use model.initFormat (loadModel's format) 'timm' or 'auto'");
    }
    const vitNames = unmatched.some((n) => /^(class_token|encoder\.layers\.|cls_token|blocks\.\d+\.)/.test(n));
    if (isViT(arch) && unmatched.includes('conv1.weight')) parts.push(`the file holds a ResNet's names (conv1, layerK.*): check model.arch (${arch})`);
    if (!isViT(arch) && vitNames) parts.push(`the file holds a Vision Transformer's names: check model.arch (${arch})`);
    throw new Error(parts.join('\n  '));
  }
  return { state: out, notes };
}

/** timm's adapt_input_conv for a 3-channel [O, 3, kh, kw] weight and `channels` inputs. */
export function adaptInputConv(w: Float32Array, shape: readonly number[], channels: number): Float32Array {
  const [o, , kh, kw] = shape;
  const k = kh * kw;
  const out = new Float32Array(o * channels * k);
  for (let oc = 0; oc < o; oc++) {
    for (let c = 0; c < channels; c++) {
      for (let j = 0; j < k; j++) {
        let v: number;
        if (channels === 1) {
          v = 0;
          for (let r = 0; r < 3; r++) v += w[(oc * 3 + r) * k + j];
        } else {
          v = w[(oc * 3 + (c % 3)) * k + j] * (3 / channels);
        }
        out[(oc * channels + c) * k + j] = v;
      }
    }
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A file given as --model.init or to loadModel: a btm-node checkpoint, or a plain state dict and the layout of its names. */
export type InitFile =
  | { kind: 'btm-node'; checkpoint: Checkpoint }
  | { kind: 'plain'; file: string; layout: NameLayout; dict: StateDict };

/**
 * Reads `file` as `format`: 'auto' takes a file with btm-node metadata as a btm-node checkpoint and
 * any other as a plain state dict whose layout detectLayout names; 'btm-node' requires the metadata;
 * 'torchvision' and 'timm' read the tensors as a plain state dict of that layout (metadata ignored).
 */
export async function readInitFile(file: string, format: InitFormat): Promise<InitFile> {
  const contents = await readSafetensors(file);
  if (format === 'btm-node' || (format === 'auto' && contents.metadata.model !== undefined)) {
    return { kind: 'btm-node', checkpoint: checkpointFromContents(file, contents) };
  }
  const dict = contents.dict.filter((e) => !e.name.startsWith(OPTIMIZER_PREFIX));
  return { kind: 'plain', file, layout: format === 'auto' ? detectLayout(dict.map((e) => e.name)) : format, dict };
}

export interface PlainImport extends ImportResult {
  layout: NameLayout;
}

/**
 * A plain state dict converted to a model's layout: renamed (timm -> torchvision; torchvision's
 * pre-0.13 ViT MLP names too), then matched against `template` (the model's own state) by importState.
 */
export function importPlainState(read: Extract<InitFile, { kind: 'plain' }>, template: StateDict, arch: Arch, head: ImportOptions['head']): PlainImport {
  let dict = toTorchvisionNames(read.dict, read.layout, arch);
  if (isViT(arch)) dict = renameLegacyViTKeys(dict);
  return { ...importState(dict, template, { file: read.file, arch, layout: read.layout, head }), layout: read.layout };
}

/** The number of classes and input channels a plain state dict's head and first convolution imply (after renaming). */
export function plainShape(read: Extract<InitFile, { kind: 'plain' }>, arch: Arch): { numClasses?: number; inChannels?: number } {
  const dict = toTorchvisionNames(read.dict, read.layout, arch);
  const get = (n: string) => dict.find((e) => e.name === n);
  const head = get(headNames(arch)[0]);
  const conv = get(firstConv(arch));
  return {
    numClasses: head && head.shape.length === 2 ? head.shape[0] : undefined,
    inChannels: conv && conv.shape.length === 4 ? conv.shape[1] : undefined,
  };
}

/**
 * Whether a safetensors file's header has btm-node model metadata (only the header is read); false
 * for anything unreadable (the loader then says what is wrong).
 */
export function hasBtmMetadata(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return false;
    const n = Number(len.readBigUInt64LE(0));
    if (n > 100_000_000) return false;
    const header = Buffer.alloc(n);
    if (readSync(fd, header, 0, n, 8) !== n) return false;
    const meta = (JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, unknown> }).__metadata__;
    return typeof meta?.model === 'string';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
