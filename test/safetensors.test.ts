import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsSync,
  writeSafetensors,
  writeSafetensorsSync,
} from '../src/safetensors.js';
import { compareStateDictLayout, stateDictToMap, type StateDict } from '../src/state-dict.js';
import { RESNET18_KEYS, RESNET50_KEYS } from './fixtures/torchvision-keys.js';

const PYTHON = '/usr/bin/python3';
const SAFETENSORS_IO = fileURLToPath(new URL('./interop/safetensors_io.py', import.meta.url));

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-safetensors-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function f32Bits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** Float32 edge cases as raw bits (NaN payloads, ±0, denormals, ±inf, extremes) and big int64s. */
function specialDict(): StateDict {
  return [
    {
      name: 'conv1.weight',
      shape: [2, 2, 3],
      dtype: 'float32',
      data: f32Bits([
        0x7fc00001, 0xffc12345, 0x7f800001, 0x7fbfffff, // quiet and signalling NaNs with payloads
        0x80000000, 0x00000000, 0x00000001, 0x807fffff, // -0, +0, smallest and largest denormals
        0x7f800000, 0xff800000, 0x7f7fffff, 0x3eaaaaab, // ±inf, max finite, ~1/3
      ]),
    },
    {
      name: 'bn1.num_batches_tracked',
      shape: [],
      dtype: 'int64',
      data: BigInt64Array.of(2n ** 63n - 1n),
    },
    {
      name: 'big',
      shape: [4],
      dtype: 'int64',
      data: BigInt64Array.of(-(2n ** 63n), 2n ** 53n + 1n, -1n, 0n),
    },
    { name: 'odd', shape: [3], dtype: 'float32', data: Float32Array.of(1, 2, 3) },
    { name: 'empty', shape: [0, 3], dtype: 'float32', data: new Float32Array(0) },
    { name: 'fc.bias', shape: [1], dtype: 'int64', data: BigInt64Array.of(-7n) },
  ];
}

function values(a: Float32Array | BigInt64Array): (number | bigint)[] {
  return [...a];
}

function bytesOf(a: Float32Array | BigInt64Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function expectBitExact(actual: StateDict, expected: StateDict): void {
  expect(actual.map((e) => [e.name, e.shape, e.dtype])).toEqual(
    expected.map((e) => [e.name, e.shape, e.dtype]),
  );
  actual.forEach((e, i) => {
    expect(e.data.constructor).toBe(expected[i].data.constructor);
    expect(bytesOf(e.data).equals(bytesOf(expected[i].data)), e.name).toBe(true);
  });
}

/** A safetensors file from a raw header object and data buffer (no validation). */
function craft(header: unknown, data: Buffer = Buffer.alloc(0), headerLength?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLength ?? json.length));
  return Buffer.concat([len, json, data]);
}

describe('safetensors encode/decode', () => {
  it('round-trips bit-exactly, in order, with metadata', () => {
    const dict = specialDict();
    const buf = encodeSafetensors(dict, { format: 'pt', note: 'ünïcode' });
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(buf.subarray(8, 8 + n).toString().trimEnd()).toMatch(/^\{"__metadata__":/);
    const { dict: back, metadata } = decodeSafetensors(buf, 'mem');
    expectBitExact(back, dict);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    for (const e of back) expect(e.data.byteOffset % e.data.BYTES_PER_ELEMENT).toBe(0);
  });

  it('omits __metadata__ when there is none and decodes it as {}', () => {
    const buf = encodeSafetensors([{ name: 'a', shape: [1], dtype: 'float32', data: Float32Array.of(1) }]);
    expect(buf.toString('utf8', 8, 16)).toBe('{"a":{"d');
    expect(decodeSafetensors(buf, 'mem').metadata).toEqual({});
  });

  it('copies tensors whose data is not aligned, and orders entries by data offset', () => {
    const data = Buffer.alloc(4 + 16);
    data.writeFloatLE(2.5, 0);
    data.writeBigInt64LE(2n ** 62n + 3n, 4);
    data.writeBigInt64LE(-5n, 12);
    const header = {
      b: { dtype: 'I64', shape: [2], data_offsets: [4, 20] },
      a: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
    };
    // Also put the whole file at an odd offset within its ArrayBuffer.
    const file = craft(header, data);
    const shifted = Buffer.alloc(file.length + 1).fill(0xee);
    file.copy(shifted, 1);
    for (const buf of [file, shifted.subarray(1)]) {
      const { dict } = decodeSafetensors(buf, 'mem');
      expect(dict.map((e) => e.name)).toEqual(['a', 'b']);
      expect(values(dict[0].data)).toEqual([2.5]);
      expect(values(dict[1].data)).toEqual([2n ** 62n + 3n, -5n]);
      expect(dict[1].data.byteOffset % 8).toBe(0);
    }
  });

  it('rejects entries whose data does not match shape or dtype', () => {
    expect(() =>
      encodeSafetensors([{ name: 'w', shape: [2, 2], dtype: 'float32', data: new Float32Array(3) }]),
    ).toThrow(/'w'.*\[2,2\] needs 4 elements, data has 3/);
    expect(() =>
      encodeSafetensors([{ name: 'n', shape: [], dtype: 'int64', data: new Float32Array(1) }]),
    ).toThrow(/'n'.*Float32Array, dtype is int64/);
    const e = { name: 'x', shape: [1], dtype: 'float32' as const, data: new Float32Array(1) };
    expect(() => encodeSafetensors([e, e])).toThrow(/duplicate.*'x'/);
  });
});

describe('safetensors files', () => {
  it('writes and reads files (async and sync)', async () => {
    const file = path.join(dir, 'rt.safetensors');
    await writeSafetensors(file, specialDict(), { epoch: '3' });
    const a = await readSafetensors(file);
    expectBitExact(a.dict, specialDict());
    expect(a.metadata).toEqual({ epoch: '3' });

    writeSafetensorsSync(file, specialDict());
    const b = readSafetensorsSync(file);
    expectBitExact(b.dict, specialDict());
    expect(b.metadata).toEqual({});
  });

  it('replaces an existing file whole and leaves no temporary file', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const file = path.join(sub, 'model.safetensors');
    const big: StateDict = [{ name: 'w', shape: [1000], dtype: 'float32', data: new Float32Array(1000).fill(1) }];
    const small: StateDict = [{ name: 'v', shape: [2], dtype: 'float32', data: Float32Array.of(3, 4) }];
    await writeSafetensors(file, big);
    await writeSafetensors(file, small);
    expect(fs.readdirSync(sub)).toEqual(['model.safetensors']);
    expect(fs.readFileSync(file).equals(encodeSafetensors(small))).toBe(true);
    writeSafetensorsSync(file, big);
    expect(fs.readdirSync(sub)).toEqual(['model.safetensors']);
    expect(readSafetensorsSync(file).dict[0].name).toBe('w');
  });

  it('cleans up its temporary file when the final rename fails', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'fail-'));
    const target = path.join(sub, 'is-a-dir');
    fs.mkdirSync(target);
    await expect(writeSafetensors(target, specialDict())).rejects.toThrow();
    expect(() => writeSafetensorsSync(target, specialDict())).toThrow();
    expect(fs.readdirSync(sub)).toEqual(['is-a-dir']);
  });

  describe('rejects corrupt files, naming the file', () => {
    const good = () => encodeSafetensors(specialDict());
    const f32 = (shape: number[], offsets: number[]) => ({ dtype: 'F32', shape, data_offsets: offsets });
    const cases: [string, () => Buffer, RegExp][] = [
      ['truncated data', () => good().subarray(0, good().length - 5), /tensor 'fc.bias'.*out of range/],
      ['too short for the length field', () => Buffer.alloc(5), /too short/],
      ['header length past the end', () => craft({}, Buffer.alloc(0), 1000), /header length 1000 exceeds/],
      ['huge header length', () => { const b = good(); b.writeBigUInt64LE(2n ** 64n - 1n); return b; }, /header length \d+ exceeds/],
      ['bad JSON', () => { const b = good(); b.write('!', 8); return b; }, /invalid JSON header/],
      ['header not an object', () => craft([1, 2]), /header is not a JSON object/],
      ['offsets out of range', () => craft({ w: f32([2], [0, 12]) }, Buffer.alloc(8)), /tensor 'w': data_offsets \[0, 12\] out of range/],
      ['reversed offsets', () => craft({ w: f32([0], [8, 4]) }, Buffer.alloc(8)), /tensor 'w'.*out of range/],
      ['overlapping offsets', () => craft({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, Buffer.alloc(12)), /tensor 'b'.*overlap tensor 'a'/],
      ['wrong byte length', () => craft({ w: f32([3], [0, 8]) }, Buffer.alloc(8)), /tensor 'w': 8 data bytes, but shape \[3\] of F32 needs 12/],
      ['unsupported dtype', () => craft({ d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)), /tensor 'd': unsupported dtype F64/],
      ['invalid shape', () => craft({ w: f32([-1], [0, 4]) }, Buffer.alloc(4)), /tensor 'w': invalid shape/],
      ['missing data_offsets', () => craft({ w: { dtype: 'F32', shape: [1] } }, Buffer.alloc(4)), /tensor 'w': invalid data_offsets/],
      ['non-string metadata', () => craft({ __metadata__: { epoch: 3 } }), /__metadata__ field 'epoch'/],
    ];
    it.each(cases)('%s', async (_label, make, message) => {
      const file = path.join(dir, 'corrupt.safetensors');
      fs.writeFileSync(file, make());
      const fileAndMessage = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*${message.source}`);
      await expect(readSafetensors(file)).rejects.toThrow(fileAndMessage);
      expect(() => readSafetensorsSync(file)).toThrow(fileAndMessage);
    });
  });
});

describe('state dict layout', () => {
  const layout = (d: StateDict) => d.map(({ name, shape, dtype }) => ({ name, shape, dtype }));

  it('reports missing and unexpected keys, shape and dtype mismatches', () => {
    const expected = layout(specialDict());
    expect(compareStateDictLayout(expected, expected)).toEqual([]);
    const actual = expected
      .filter((e) => e.name !== 'odd')
      .map((e) =>
        e.name === 'conv1.weight' ? { ...e, shape: [2, 3, 2] }
          : e.name === 'fc.bias' ? { ...e, dtype: 'float32' as const } : e,
      )
      .concat({ name: 'extra', shape: [1], dtype: 'float32' });
    expect(compareStateDictLayout(expected, actual)).toEqual([
      "shape mismatch for 'conv1.weight': expected [2,2,3], got [2,3,2]",
      "missing key 'odd'",
      "dtype mismatch for 'fc.bias': expected int64, got float32",
      "unexpected key 'extra'",
    ]);
  });

  it('indexes a state dict by name', () => {
    const map = stateDictToMap(specialDict());
    expect([...map.keys()]).toEqual(specialDict().map((e) => e.name));
    expect(() => stateDictToMap([...specialDict(), specialDict()[0]])).toThrow(/duplicate.*conv1.weight/);
  });

  it('has torchvision ResNet fixtures of the expected size', () => {
    expect(RESNET18_KEYS).toHaveLength(122);
    expect(RESNET50_KEYS).toHaveLength(320);
    expect(RESNET50_KEYS.at(-2)).toEqual({ name: 'fc.weight', shape: [1000, 2048], dtype: 'float32' });
    expect(RESNET18_KEYS.filter((k) => k.dtype === 'int64').every((k) => k.name.endsWith('.num_batches_tracked'))).toBe(true);
  });
});

const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const skipNote = hasTorch ? '' : ` [skipped: ${PYTHON} cannot import torch]`;

function python(...args: string[]): string {
  return execFileSync(PYTHON, args, { encoding: 'utf8', timeout: 60_000 });
}

function parsePyFloat(s: string): number {
  return ({ nan: NaN, inf: Infinity, '-inf': -Infinity } as Record<string, number>)[s] ?? Number(s);
}

describe(`interop with PyTorch${skipNote}`, () => {
  it.skipIf(!hasTorch)('Python reads a file written by TypeScript', async () => {
    const file = path.join(dir, 'ts-written.safetensors');
    const dict: StateDict = [
      { name: 'w', shape: [2, 3], dtype: 'float32', data: Float32Array.of(-0, 1 / 3, 1e-45, -2.5, 3e38, 7) },
      { name: 'n', shape: [], dtype: 'int64', data: BigInt64Array.of(2n ** 62n + 3n) },
      { name: 'k', shape: [2, 1], dtype: 'int64', data: BigInt64Array.of(-(2n ** 63n), 42n) },
    ];
    await writeSafetensors(file, dict, { arch: 'resnet18' });
    const desc = JSON.parse(python(SAFETENSORS_IO, 'describe', file));
    expect(desc.metadata).toEqual({ arch: 'resnet18' });
    expect(desc.tensors.map((t: { name: string; dtype: string; shape: number[] }) => [t.name, t.dtype, t.shape])).toEqual([
      ['w', 'F32', [2, 3]],
      ['n', 'I64', []],
      ['k', 'I64', [2, 1]],
    ]);
    desc.tensors.forEach((t: { values: string[] }, i: number) => {
      const data = dict[i].data;
      t.values.forEach((v, j) => {
        if (data instanceof Float32Array) expect(Object.is(parsePyFloat(v), data[j]), `${dict[i].name}[${j}]=${v}`).toBe(true);
        else expect(BigInt(v)).toBe(data[j]);
      });
    });
  });

  it.skipIf(!hasTorch)('TypeScript reads a file written by Python (with an unaligned int64 tensor)', async () => {
    const file = path.join(dir, 'py-written.safetensors');
    python(SAFETENSORS_IO, 'example', file);
    const { dict, metadata } = await readSafetensors(file);
    expect(metadata).toEqual({ format: 'pt', writer: 'safetensors_io.py' });
    const m = stateDictToMap(dict);
    expect(dict.map((e) => e.name)).toEqual(['odd', 'big', 'grid', 'scalar', 'empty']);
    expect(values(m.get('odd')!.data)).toEqual([1.5, -0, Infinity]);
    expect(Object.is(m.get('odd')!.data[1], -0)).toBe(true);
    expect(m.get('big')!.dtype).toBe('int64');
    expect(values(m.get('big')!.data)).toEqual([2n ** 62n + 3n, -(2n ** 63n), 2n ** 63n - 1n]);
    expect(m.get('grid')!.shape).toEqual([3, 4]);
    expect(values(m.get('grid')!.data)).toEqual(Array.from({ length: 12 }, (_, i) => i / 8 - 0.5));
    expect(m.get('scalar')).toMatchObject({ shape: [], data: Float32Array.of(3.25) });
    expect(m.get('empty')).toMatchObject({ shape: [0, 4], data: new Float32Array(0) });
  });

  it.skipIf(!hasTorch)('a TypeScript file survives a round trip through torch bit-exactly', async () => {
    const src = path.join(dir, 'rt-src.safetensors');
    const out = path.join(dir, 'rt-out.safetensors');
    await writeSafetensors(src, specialDict(), { k: 'v' });
    python(SAFETENSORS_IO, 'roundtrip', src, out);
    const back = await readSafetensors(out);
    expectBitExact(back.dict, specialDict());
    expect(back.metadata).toEqual({ k: 'v' });
  });

  it.skipIf(!hasTorch)('torchvision state dicts match the ResNet fixtures', async () => {
    for (const [arch, keys] of [['resnet18', RESNET18_KEYS], ['resnet50', RESNET50_KEYS]] as const) {
      const file = path.join(dir, `${arch}.safetensors`);
      python('-c', [
        'import sys, torchvision',
        `sys.path.insert(0, ${JSON.stringify(path.dirname(SAFETENSORS_IO))})`,
        'import safetensors_io',
        `safetensors_io.save(sys.argv[1], torchvision.models.${arch}(weights=None).state_dict())`,
      ].join('\n'), file);
      const { dict } = await readSafetensors(file);
      expect(compareStateDictLayout(keys, dict)).toEqual([]);
      expect(dict.map((e) => e.name)).toEqual(keys.map((k) => k.name));
    }
  });
});

describe('half-precision tensors (PyTorch F16 / BF16 checkpoints) read as float32', () => {
  const u16 = (bits: number[]) => Buffer.from(new Uint16Array(bits).buffer);

  it('F16: normals, subnormals, signed zeros, infinities and NaN, exactly', () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x3555, 0x7e00];
    const expected = [1, -2, 65504, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, 0, -0, Infinity, -Infinity, 0.333251953125, NaN];
    const { dict, fileDtypes } = decodeSafetensors(craft({ h: { dtype: 'F16', shape: [3, 4], data_offsets: [0, 24] } }, u16(bits)), 'mem');
    expect(dict[0]).toMatchObject({ name: 'h', shape: [3, 4], dtype: 'float32' });
    expect(dict[0].data).toBeInstanceOf(Float32Array);
    expect([...dict[0].data]).toEqual(expected);
    expect(Object.is(dict[0].data[7], -0)).toBe(true);
    expect(fileDtypes).toEqual({ h: 'F16' });
  });

  it('BF16: the upper half of a float32', () => {
    const bits = [0x3f80, 0xc000, 0x7f80, 0x0001, 0x4049, 0x8000];
    const { dict } = decodeSafetensors(craft({ b: { dtype: 'BF16', shape: [6], data_offsets: [0, 12] } }, u16(bits)), 'mem');
    expect([...dict[0].data]).toEqual([1, -2, Infinity, 2 ** -133, 3.140625, -0]);
  });

  it('an odd-offset F16 tensor is copied to align, and its byte length is checked', () => {
    const data = Buffer.concat([Buffer.alloc(1), u16([0x3c00, 0x4000])]);
    const { dict } = decodeSafetensors(craft({ h: { dtype: 'F16', shape: [2], data_offsets: [1, 5] } }, data), 'mem');
    expect([...dict[0].data]).toEqual([1, 2]);
    expect(() => decodeSafetensors(craft({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, u16([1, 2])), 'mem'))
      .toThrow("mem: tensor 'h': 4 data bytes, but shape [3] of F16 needs 6");
  });

  it.skipIf(!hasTorch)('reads F16 and BF16 files written by torch, equal to torch\'s own float32 conversion', () => {
    const file = path.join(dir, 'half.safetensors');
    python('-c', `import sys, torch; sys.path.insert(0, ${JSON.stringify(path.dirname(SAFETENSORS_IO))}); import safetensors_io as s
g = torch.Generator().manual_seed(0)
w = torch.randn(4, 3, generator=g) * 10
s.save(${JSON.stringify(file)}, {"h": w.half(), "b": w.bfloat16(), "n": torch.tensor(5), "h32": w.half().float(), "b32": w.bfloat16().float()})`);
    const m = new Map(readSafetensorsSync(file).dict.map((e) => [e.name, e]));
    expect(m.get('h')!.dtype).toBe('float32');
    expect([...m.get('h')!.data]).toEqual([...m.get('h32')!.data]);
    expect([...m.get('b')!.data]).toEqual([...m.get('b32')!.data]);
    expect(m.get('n')!.data).toEqual(BigInt64Array.of(5n));
  });
});

describe('files that are not safetensors', () => {
  it('a random file: "not a safetensors file", not an absurd header length alone', () => {
    const file = path.join(dir, 'random.bin');
    fs.writeFileSync(file, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)));
    expect(() => readSafetensorsSync(file)).toThrow(new RegExp(`^${file}: not a safetensors file: header length \\d+ exceeds`));
    fs.writeFileSync(file, '{"hello": "a json file, not safetensors"}');
    expect(() => readSafetensorsSync(file)).toThrow(`${file}: not a safetensors file`);
  });

  it('zip, pickle and gzip files are named as such', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['zip.pt', Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(60)]), /not a safetensors file but a zip archive, the format of PyTorch's torch\.save: convert it once with\n {2}python3 '.*scripts\/pt_to_safetensors\.py' '.*zip\.pt' '.*zip\.safetensors'\n.*pip install safetensors/],
      ['legacy.pth', Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]), /not a safetensors file but a Python pickle \(a legacy torch\.save file\): convert it once/],
      ['w.safetensors.gz', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), /not a safetensors file but gzip-compressed data: gunzip it first/],
    ];
    for (const [name, bytes, message] of cases) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, bytes);
      expect(() => readSafetensorsSync(file)).toThrow(message);
    }
  });

  it.skipIf(!hasTorch)('torch.save files (zip and legacy pickle): the printed conversion works', () => {
    for (const legacy of [false, true]) {
      const pt = path.join(dir, `model-${legacy ? 'legacy' : 'zip'}.pt`);
      python('-c', `import torch
g = torch.Generator().manual_seed(1)
sd = {"conv1.weight": torch.randn(2, 3, generator=g), "bn1.num_batches_tracked": torch.tensor(7), "fc.bias": torch.randn(3, generator=g).half()}
torch.save({"state_dict": sd, "epoch": 3}, ${JSON.stringify(pt)}, _use_new_zipfile_serialization=${legacy ? 'False' : 'True'})`);
      let message = '';
      try {
        readSafetensorsSync(pt);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(legacy ? /a Python pickle/ : /a zip archive/);
      const command = message.split('\n')[1].trim();
      expect(command).toMatch(/^python3 '/);
      execFileSync('/bin/sh', ['-c', command.replace(/^python3 /, `${PYTHON} `)], { encoding: 'utf8', timeout: 60_000 });
      const out = pt.replace(/\.pt$/, '.safetensors');
      const { dict, fileDtypes } = readSafetensorsSync(out);
      expect(dict.map((e) => e.name)).toEqual(['conv1.weight', 'bn1.num_batches_tracked', 'fc.bias']);
      expect(fileDtypes['fc.bias']).toBe('F16');
      expect(dict[1].data).toEqual(BigInt64Array.of(7n));
      expect(dict[0].data).toHaveLength(6);
    }
  });
});
