/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of UTF-8 JSON describing each tensor (dtype, shape, data_offsets relative
 * to the byte buffer) plus optional string `__metadata__`, then the byte buffer.
 * Only F32 and I64 tensors are supported, matching {@link StateEntry}.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { endianness } from 'node:os';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file.js';
import type { DType, StateDict, StateEntry } from './state-dict.js';

export type Metadata = Record<string, string>;

export interface SafetensorsContents {
  dict: StateDict;
  metadata: Metadata;
}

const METADATA_KEY = '__metadata__';

const DTYPES = new Map<string, { dtype: DType; itemsize: number }>([
  ['F32', { dtype: 'float32', itemsize: 4 }],
  ['I64', { dtype: 'int64', itemsize: 8 }],
]);
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
  if (buf.byteLength < 8) fail(`file too short for the header length (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(buf.byteLength - 8)) {
    fail(`header length ${n} exceeds the ${buf.byteLength - 8} bytes after the length field`);
  }
  const dataStart = 8 + Number(n);
  const dataLength = buf.byteLength - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, dataStart)));
  } catch (e) {
    fail(`invalid JSON header: ${(e as Error).message}`);
  }
  if (!isObject(header)) fail('header is not a JSON object');

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
  let prev: (typeof tensors)[number] | undefined;
  for (const t of tensors) {
    const where = `tensor '${t.name}'`;
    if (prev && t.begin < prev.end) {
      fail(`${where}: data_offsets [${t.begin}, ${t.end}] overlap tensor '${prev.name}' [${prev.begin}, ${prev.end}]`);
    }
    prev = t;
    const spec = DTYPES.get(t.dtype) ?? fail(`${where}: unsupported dtype ${t.dtype} (only F32 and I64)`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.end - t.begin !== numel * spec.itemsize) {
      fail(`${where}: ${t.end - t.begin} data bytes, but shape [${t.shape}] of ${t.dtype} needs ${numel * spec.itemsize}`);
    }
    let bytes = buf.subarray(dataStart + t.begin, dataStart + t.end);
    if (bytes.byteOffset % spec.itemsize !== 0) bytes = new Uint8Array(bytes); // copy to align
    const data = spec.dtype === 'float32'
      ? new Float32Array(bytes.buffer, bytes.byteOffset, numel)
      : new BigInt64Array(bytes.buffer, bytes.byteOffset, numel);
    dict.push({ name: t.name, shape: t.shape, dtype: spec.dtype, data });
  }
  return { dict, metadata };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCountArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

/** Read a safetensors file. */
export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  return decodeSafetensors(await fsp.readFile(file), file);
}

export function readSafetensorsSync(file: string): SafetensorsContents {
  return decodeSafetensors(fs.readFileSync(file), file);
}

/** Write a safetensors file atomically (temp file in the same directory, fsync, rename). */
export async function writeSafetensors(file: string, dict: StateDict, metadata?: Metadata): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(dict, metadata));
}

export function writeSafetensorsSync(file: string, dict: StateDict, metadata?: Metadata): void {
  writeFileAtomicSync(file, encodeSafetensors(dict, metadata));
}
