/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of UTF-8 JSON describing each tensor (dtype, shape, data_offsets relative
 * to the byte buffer) plus optional string `__metadata__`, then the byte buffer.
 * Tensors are read as F32 and I64, matching {@link StateEntry}; F16 and BF16 tensors (PyTorch's
 * half-precision checkpoints) are converted to float32 on reading. Writing is F32 and I64 only.
 * A file that is not safetensors (a `torch.save` zip or pickle, gzip, anything else) is named as such,
 * with the one-line conversion for PyTorch files.
 */
import { endianness } from 'node:os';
import { join } from 'node:path';
import { arg, is } from './args.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file.js';
import { PACKAGE_ROOT } from './native.js';
import { readUserFile, readUserFileAsync } from './user-file.js';
import type { DType, StateDict, StateEntry } from './state-dict.js';

export type Metadata = Record<string, string>;

export interface SafetensorsContents {
  dict: StateDict;
  metadata: Metadata;
  /** The dtype of each tensor as stored in the file ('F32', 'F16', 'BF16', 'I64'), by name. */
  fileDtypes: Record<string, string>;
}

const METADATA_KEY = '__metadata__';

const DTYPES = new Map<string, { dtype: DType; itemsize: number }>([
  ['F32', { dtype: 'float32', itemsize: 4 }],
  ['I64', { dtype: 'int64', itemsize: 8 }],
  ['F16', { dtype: 'float32', itemsize: 2 }],
  ['BF16', { dtype: 'float32', itemsize: 2 }],
]);
const SUPPORTED = 'F32, I64, and F16 / BF16 (read as float32)';
const FILE_DTYPE: Record<DType, string> = { float32: 'F32', int64: 'I64' };

// Tensor bytes are copied to and from typed arrays as-is, which is only right on little-endian hosts.
if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');

/** Serialize a state dict (in its order) to safetensors bytes. */
export function encodeSafetensors(dict: StateDict, metadata: Metadata = {}): Buffer {
  const header: Record<string, unknown> = Object.create(null); // so a tensor may be named '__proto__'
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const entry of dict) {
    checkEntry(entry);
    if (Object.hasOwn(header, entry.name)) {
      throw new Error(`safetensors: duplicate or reserved tensor name '${entry.name}'`);
    }
    const end = offset + entry.data.byteLength;
    header[entry.name] = {
      dtype: FILE_DTYPE[entry.dtype],
      shape: entry.shape,
      data_offsets: [offset, end],
    };
    offset = end;
  }
  let json = JSON.stringify(header);
  // Pad so the byte buffer starts 8-byte aligned (keeps typed-array views aligned when reading).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerLength = Buffer.byteLength(json);
  const out = Buffer.alloc(8 + headerLength + offset);
  out.writeBigUInt64LE(BigInt(headerLength), 0);
  out.write(json, 8, 'utf8');
  let pos = 8 + headerLength;
  for (const { data } of dict) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
    pos += data.byteLength;
  }
  return out;
}

function checkEntry(entry: StateEntry): void {
  const where = `safetensors: tensor '${entry.name}'`;
  if (!entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: invalid shape [${entry.shape}]`);
  }
  const ok = entry.dtype === 'float32' ? entry.data instanceof Float32Array
    : entry.dtype === 'int64' ? entry.data instanceof BigInt64Array : false;
  if (!ok) throw new Error(`${where}: data is a ${entry.data.constructor.name}, dtype is ${entry.dtype}`);
  const numel = entry.shape.reduce((a, b) => a * b, 1);
  if (entry.data.length !== numel) {
    throw new Error(`${where}: shape [${entry.shape}] needs ${numel} elements, data has ${entry.data.length}`);
  }
}

/**
 * Parse safetensors bytes; `source` (usually the file path) prefixes every error message.
 * Entries come back in the order of their data offsets. Tensor data aliases `buf` where it is
 * suitably aligned and is copied otherwise.
 */
export function decodeSafetensors(buf: Uint8Array, source: string): SafetensorsContents {
  function fail(msg: string): never {
    throw new Error(`${source}: ${msg}`);
  }
  const foreign = foreignFormat(buf, source);
  if (foreign) fail(foreign);
  if (buf.byteLength < 8) fail(`not a safetensors file: too short for the header length (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(buf.byteLength - 8)) {
    fail(`not a safetensors file: header length ${n} exceeds the ${buf.byteLength - 8} bytes after the length field ` +
      '(a safetensors file starts with the 8-byte length of its JSON header)');
  }
  const dataStart = 8 + Number(n);
  const dataLength = buf.byteLength - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, dataStart)));
  } catch (e) {
    fail(`not a safetensors file: invalid JSON header: ${(e as Error).message}`);
  }
  if (!isObject(header)) fail('not a safetensors file: header is not a JSON object');

  let metadata: Metadata = {};
  const tensors: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isObject(info)) fail(`${METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') fail(`${METADATA_KEY} field '${k}' is not a string`);
      }
      metadata = info as Metadata;
      continue;
    }
    const where = `tensor '${name}'`;
    if (!isObject(info)) fail(`${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') fail(`${where}: missing or invalid dtype`);
    if (!isCountArray(shape)) fail(`${where}: invalid shape ${JSON.stringify(shape)}`);
    if (!isCountArray(offsets) || offsets.length !== 2) {
      fail(`${where}: invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets;
    if (begin > end || end > dataLength) {
      fail(`${where}: data_offsets [${begin}, ${end}] out of range (data buffer is ${dataLength} bytes)`);
    }
    tensors.push({ name, dtype, shape, begin, end });
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dict: StateDict = [];
  const fileDtypes: Record<string, string> = Object.create(null);
  let prev: (typeof tensors)[number] | undefined;
  for (const t of tensors) {
    const where = `tensor '${t.name}'`;
    if (prev && t.begin < prev.end) {
      fail(`${where}: data_offsets [${t.begin}, ${t.end}] overlap tensor '${prev.name}' [${prev.begin}, ${prev.end}]`);
    }
    prev = t;
    const spec = DTYPES.get(t.dtype) ?? fail(`${where}: unsupported dtype ${t.dtype} (supported: ${SUPPORTED})`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.end - t.begin !== numel * spec.itemsize) {
      fail(`${where}: ${t.end - t.begin} data bytes, but shape [${t.shape}] of ${t.dtype} needs ${numel * spec.itemsize}`);
    }
    let bytes = buf.subarray(dataStart + t.begin, dataStart + t.end);
    if (bytes.byteOffset % spec.itemsize !== 0) bytes = new Uint8Array(bytes); // copy to align
    const data = t.dtype === 'F16' ? halfToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, numel))
      : t.dtype === 'BF16' ? bfloat16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, numel))
        : spec.dtype === 'float32' ? new Float32Array(bytes.buffer, bytes.byteOffset, numel)
          : new BigInt64Array(bytes.buffer, bytes.byteOffset, numel);
    dict.push({ name: t.name, shape: t.shape, dtype: spec.dtype, data });
    fileDtypes[t.name] = t.dtype;
  }
  return { dict, metadata, fileDtypes };
}

/** IEEE 754 binary16 -> float32, exactly (every half value is a float32 value). */
export function halfToFloat32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) {
    const x = h[i];
    const sign = (x & 0x8000) << 16;
    const exp = (x >> 10) & 0x1f;
    const mant = x & 0x3ff;
    if (exp === 0x1f) bits[i] = sign | 0x7f800000 | (mant << 13); // inf, NaN (payload kept)
    else if (exp !== 0) bits[i] = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) bits[i] = sign; // +-0
    else out[i] = (sign ? -1 : 1) * mant * 2 ** -24; // subnormal half: a normal float32
  }
  return out;
}

/** bfloat16 -> float32: the 16 bits are the float32's upper half. */
export function bfloat16ToFloat32(h: Uint16Array): Float32Array {
  const bits = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
  return new Float32Array(bits.buffer);
}

/** The `.safetensors` name next to a PyTorch file, for conversion hints. */
function safetensorsName(file: string): string {
  return /\.(pt|pth|bin|ckpt|tar)$/i.test(file) ? file.replace(/\.[^.]+$/, '.safetensors') : `${file}.safetensors`;
}

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** The commands that convert a PyTorch `torch.save` file to safetensors. */
export function conversionHint(file: string): string {
  const out = safetensorsName(file);
  const py = (s: string) => s.replaceAll('\\', '\\\\').replaceAll("'", "\\'");
  return `convert it once with\n  python3 ${shellQuote(join(PACKAGE_ROOT, 'scripts', 'pt_to_safetensors.py'))} ${shellQuote(file)} ${shellQuote(out)}\n` +
    'or, with the safetensors package (pip install safetensors):\n' +
    `  python3 -c "import torch, safetensors.torch as st; sd = torch.load('${py(file)}', map_location='cpu'); ` +
    `sd = sd.get('state_dict', sd); st.save_file({k: v.contiguous() for k, v in sd.items()}, '${py(out)}')"`;
}

/** When the bytes are recognisably another format: what it is (and how to convert), else undefined. */
function foreignFormat(buf: Uint8Array, source: string): string | undefined {
  const starts = (...b: number[]) => b.every((x, i) => buf[i] === x);
  if (starts(0x50, 0x4b, 0x03, 0x04)) {
    return 'not a safetensors file but a zip archive, the format of PyTorch\'s torch.save: ' + conversionHint(source);
  }
  if (buf.length >= 2 && buf[0] === 0x80 && buf[1] >= 2 && buf[1] <= 5) {
    return 'not a safetensors file but a Python pickle (a legacy torch.save file): ' + conversionHint(source);
  }
  if (starts(0x1f, 0x8b)) return 'not a safetensors file but gzip-compressed data: gunzip it first';
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCountArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

/** Read a safetensors file. */
export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  arg('readSafetensors', 'file', file, is.path());
  return decodeSafetensors(await readUserFileAsync(file, 'safetensors file'), file);
}

export function readSafetensorsSync(file: string): SafetensorsContents {
  arg('readSafetensorsSync', 'file', file, is.path());
  return decodeSafetensors(readUserFile(file, 'safetensors file'), file);
}

const STATE_DICT = is.array(is.object({
  name: is.string(),
  shape: is.array(is.integer({ min: 0 })),
  dtype: is.oneOf(['float32', 'int64']),
  data: is.anyOf('a Float32Array or BigInt64Array', is.instance(Float32Array), is.instance(BigInt64Array)),
}, { extra: true }));
const METADATA = is.optional((v, what) => {
  is.object({}, { extra: true })(v, what);
  for (const [k, x] of Object.entries(v as object)) is.string()(x, `${what}.${k}`);
  return v as Metadata;
});

function checkWriteArgs(fn: string, file: unknown, dict: unknown, metadata: unknown): void {
  arg(fn, 'file', file, is.path());
  arg(fn, 'dict', dict, STATE_DICT);
  arg(fn, 'metadata', metadata, METADATA);
}

/** Write a safetensors file atomically (temp file in the same directory, fsync, rename). */
export async function writeSafetensors(file: string, dict: StateDict, metadata?: Metadata): Promise<void> {
  checkWriteArgs('writeSafetensors', file, dict, metadata);
  await writeFileAtomic(file, encodeSafetensors(dict, metadata));
}

export function writeSafetensorsSync(file: string, dict: StateDict, metadata?: Metadata): void {
  checkWriteArgs('writeSafetensorsSync', file, dict, metadata);
  writeFileAtomicSync(file, encodeSafetensors(dict, metadata));
}
