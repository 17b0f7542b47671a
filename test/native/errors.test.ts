// Bad input never crashes or hangs: every argument check throws a TypeError (wrong type) or
// RangeError (wrong value) naming the argument; disposed and busy handles give clear errors; long
// work leaves the event loop free; a failure inside libtorch becomes a rejected Promise.
import { describe, expect, it, vi } from 'vitest';
import { Dataset, Model, cudaAvailable, setCudaDeterministic, type StateDict, type TrainOptions } from '../../src/index.js';
import { patternSource, range } from '../helpers/synthetic.js';

const source = patternSource;
const small = () => new Model({ arch: 'resnet8', numClasses: 3 });
const smallData = (n = 8, size = 8) => new Dataset(source(n, 3, size, size));
/** For deliberately ill-typed arguments. */
const bad = (x: unknown) => x as never;

describe('Model constructor', () => {
  it('unknown arch: RangeError listing the known archs', () => {
    expect(() => new Model({ arch: bad('resnet9'), numClasses: 3 })).toThrow(RangeError);
    expect(() => new Model({ arch: bad('resnet9'), numClasses: 3 })).toThrow(
      /options\.arch: unknown architecture 'resnet9' \(known: resnet8, resnet20.*resnext50_32x4d, vit_b_16, .*vit_mini_p4\)/,
    );
  });

  it('arch not a string: TypeError', () => {
    expect(() => new Model({ arch: bad(18), numClasses: 3 })).toThrow(TypeError);
    expect(() => new Model({ arch: bad(18), numClasses: 3 })).toThrow(/options\.arch must be a string.*got 18/);
    expect(() => new Model(bad({ numClasses: 3 }))).toThrow(/options\.arch must be a string.*got undefined/);
  });

  it('numClasses 0 / 1.5 / "10" / missing', () => {
    expect(() => new Model({ arch: 'resnet8', numClasses: 0 })).toThrow(RangeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 0 })).toThrow(/options\.numClasses must be in \[1, \d+\], got 0/);
    expect(() => new Model({ arch: 'resnet8', numClasses: 1.5 })).toThrow(TypeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 1.5 })).toThrow(/options\.numClasses must be an integer, got 1\.5/);
    expect(() => new Model({ arch: 'resnet8', numClasses: bad('10') })).toThrow(TypeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: bad('10') })).toThrow(/options\.numClasses must be an integer, got '10'/);
    expect(() => new Model(bad({ arch: 'resnet8' }))).toThrow(/options\.numClasses is required/);
  });

  it('inChannels 0, imageSize -1', () => {
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, inChannels: 0 })).toThrow(RangeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, inChannels: 0 })).toThrow(/options\.inChannels must be in \[1, 4096\], got 0/);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, imageSize: -1 })).toThrow(RangeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, imageSize: -1 })).toThrow(/options\.imageSize/);
  });

  it('negative or non-integer seed', () => {
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, seed: -1 })).toThrow(RangeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, seed: -1 })).toThrow(/options\.seed must be in \[0, .*\], got -1/);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, seed: 1.5 })).toThrow(TypeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, seed: 1.5 })).toThrow(/options\.seed must be an integer/);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, seed: bad('1') })).toThrow(TypeError);
  });

  it('bad device strings', () => {
    for (const device of ['gpu', 'cuda:x', 'cpu:0', 'CPU', 'cuda:', '']) {
      expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: bad(device) }), device).toThrow(RangeError);
      expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: bad(device) }), device).toThrow(
        new RegExp(`options\\.device: device must be 'cpu', 'cuda' or 'cuda:N', got '${device}'`),
      );
    }
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: bad(0) })).toThrow(TypeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: bad(0) })).toThrow(/options\.device must be a string, got 0/);
  });

  it.skipIf(cudaAvailable())("'cuda' without CUDA: RangeError saying CUDA is not available (model and dataset)", () => {
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: 'cuda' })).toThrow(RangeError);
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: 'cuda:1' })).toThrow(
      /options\.device: device 'cuda:1' requested but CUDA is not available/,
    );
    expect(() => new Dataset(source(2, 3, 4, 4), 'cuda')).toThrow(RangeError);
    expect(() => new Dataset(source(2, 3, 4, 4), 'cuda')).toThrow(/device 'cuda' requested but CUDA is not available/);
  });

  it.runIf(cudaAvailable())('a CUDA index past the visible devices: RangeError', () => {
    expect(() => new Model({ arch: 'resnet8', numClasses: 3, device: 'cuda:999' })).toThrow(/'cuda:999' out of range/);
  });

  it('options missing entirely or not an object', () => {
    expect(() => new Model(bad(undefined))).toThrow(TypeError);
    expect(() => new Model(bad(undefined))).toThrow(/Model: options must be an object, got undefined/);
    expect(() => new Model(bad('resnet8'))).toThrow(/Model: options must be an object, got 'resnet8'/);
    expect(() => new Model(bad(['resnet8']))).toThrow(/Model: options must be an object, got an array/);
  });
});

describe('Dataset constructor', () => {
  it('images not a Uint8Array', () => {
    const s = source(2, 3, 4, 4);
    for (const images of [new Float32Array(96), Array.from(s.images), new Uint8ClampedArray(96), Buffer.alloc(96).buffer]) {
      expect(() => new Dataset({ ...s, images: bad(images) })).toThrow(TypeError);
      expect(() => new Dataset({ ...s, images: bad(images) })).toThrow(/Dataset: images must be a Uint8Array/);
    }
    expect(() => new Dataset({ ...s, images: bad(Array.from(s.images)) })).toThrow(/got an array/);
    expect(() => new Dataset({ ...s, images: bad(new Float32Array(96)) })).toThrow(/got a typed array/);
  });

  it('a Node Buffer (a Uint8Array) is accepted', () => {
    const s = source(2, 3, 4, 4);
    const d = new Dataset({ ...s, images: Buffer.from(s.images) });
    expect(d.shape).toEqual([2, 3, 4, 4]);
    d.dispose();
  });

  it('labels not an Int32Array', () => {
    const s = source(2, 3, 4, 4);
    for (const labels of [[0, 1], new Uint32Array(2), new Float64Array(2), new BigInt64Array(2)]) {
      expect(() => new Dataset({ ...s, labels: bad(labels) })).toThrow(TypeError);
      expect(() => new Dataset({ ...s, labels: bad(labels) })).toThrow(/Dataset: labels must be an Int32Array/);
    }
  });

  it('images length does not match n*c*h*w', () => {
    const s = source(2, 3, 4, 4);
    expect(() => new Dataset({ ...s, images: s.images.subarray(1) })).toThrow(RangeError);
    expect(() => new Dataset({ ...s, images: s.images.subarray(1) })).toThrow(
      /Dataset: images has 95 bytes, expected n\*channels\*height\*width = 96/,
    );
    expect(() => new Dataset({ ...s, width: 5 })).toThrow(/images has 96 bytes, expected n\*channels\*height\*width = 120/);
  });

  it('labels length does not match n', () => {
    const s = source(2, 3, 4, 4);
    expect(() => new Dataset({ ...s, labels: new Int32Array(3) })).toThrow(RangeError);
    expect(() => new Dataset({ ...s, labels: new Int32Array(3) })).toThrow(/Dataset: labels has 3 entries, expected n = 2/);
  });

  it('a negative label: RangeError naming the index and value', () => {
    const s = source(5, 1, 2, 2);
    s.labels[3] = -2;
    expect(() => new Dataset(s)).toThrow(RangeError);
    expect(() => new Dataset(s)).toThrow(/Dataset: labels\[3\] = -2 is negative/);
  });

  it('bad shape fields', () => {
    const s = source(2, 3, 4, 4);
    expect(() => new Dataset({ ...s, height: 0 })).toThrow(RangeError);
    expect(() => new Dataset({ ...s, height: 0 })).toThrow(/Dataset\.height must be in \[1, 65536\], got 0/);
    expect(() => new Dataset({ ...s, channels: 1.5 })).toThrow(TypeError);
    expect(() => new Dataset({ ...s, channels: 1.5 })).toThrow(/Dataset\.channels must be an integer, got 1\.5/);
    expect(() => new Dataset({ ...s, n: -1 })).toThrow(/Dataset\.n must be in \[0, \d+\], got -1/);
    expect(() => new Dataset({ ...s, width: bad('4') })).toThrow(/Dataset\.width must be an integer, got '4'/);
    expect(() => new Dataset({ ...s, width: bad(undefined) })).toThrow(/Dataset\.width is required/);
    expect(() => new Dataset({ ...s, width: NaN })).toThrow(/Dataset\.width must be an integer, got nan/i);
  });

  it('bad device', () => {
    expect(() => new Dataset(source(2, 3, 4, 4), bad('gpu'))).toThrow(RangeError);
    expect(() => new Dataset(source(2, 3, 4, 4), bad('gpu'))).toThrow(/Dataset\.device: device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'/);
  });

  it('a shape whose byte count overflows 64 bits is refused, not wrapped round to match an empty buffer', () => {
    // n*c*h*w = 2^20 * 2^12 * 2^16 * 2^16 = 2^64. The binding's own size check multiplies in int64
    // (and wraps to 0 = the empty buffer's length); today libtorch's numel overflow check is what stops it.
    const n = 2 ** 20;
    const make = () =>
      new Dataset({ images: new Uint8Array(0), labels: new Int32Array(n), n, channels: 4096, height: 65536, width: 65536 });
    expect(make).toThrow(Error);
    expect(make).toThrow(/Dataset/);
  });
});

describe('trainEpoch argument checks (thrown synchronously, not as a rejected Promise)', () => {
  const model = small();
  const ds = smallData(8, 8);
  const idx = range(8);
  const train = (opts: Partial<TrainOptions> & Record<string, unknown>, d: Dataset = ds, i: Int32Array = idx) =>
    model.trainEpoch(d, i, { lr: 0.01, batchSize: 4, ...opts } as TrainOptions);

  it('a valid call returns a Promise (and the checks below throw before one is made)', async () => {
    const p = train({});
    expect(p).toBeInstanceOf(Promise);
    const r = await p;
    expect(r.steps).toBe(2);
  });

  it('dataset not a Dataset', () => {
    expect(() => model.trainEpoch(bad({}), idx, { lr: 0.1 })).toThrow(TypeError);
    expect(() => model.trainEpoch(bad({}), idx, { lr: 0.1 })).toThrow(/Model\.trainEpoch: dataset must be a Dataset/);
    // an object with a `handle` that is not a native dataset
    expect(() => model.trainEpoch(bad({ handle: { n: 8 } }), idx, { lr: 0.1 })).toThrow(/dataset must be a Dataset, got an object/);
    expect(() => model.trainEpoch(bad({ handle: model }), idx, { lr: 0.1 })).toThrow(/dataset must be a Dataset/);
  });

  it('indices not an Int32Array', () => {
    expect(() => model.trainEpoch(ds, bad([0, 1, 2]), { lr: 0.1 })).toThrow(TypeError);
    expect(() => model.trainEpoch(ds, bad([0, 1, 2]), { lr: 0.1 })).toThrow(/Model\.trainEpoch: indices must be an Int32Array, got an array/);
    expect(() => model.trainEpoch(ds, bad(new Uint32Array(3)), { lr: 0.1 })).toThrow(/indices must be an Int32Array, got a typed array/);
    expect(() => model.trainEpoch(ds, bad(undefined), { lr: 0.1 })).toThrow(/indices must be an Int32Array, got undefined/);
  });

  it('an index out of range or negative: RangeError naming position and value', () => {
    expect(() => train({}, ds, Int32Array.from([0, 1, 2, 99]))).toThrow(RangeError);
    expect(() => train({}, ds, Int32Array.from([0, 1, 2, 99]))).toThrow(/Model\.trainEpoch: indices\[3\] = 99 out of range \[0, 8\)/);
    expect(() => train({}, ds, Int32Array.from([0, -1]))).toThrow(/indices\[1\] = -1 out of range \[0, 8\)/);
    expect(() => train({}, ds, Int32Array.from([8]))).toThrow(/indices\[0\] = 8 out of range/);
  });

  it('batchSize 0 / 2.5', () => {
    expect(() => train({ batchSize: 0 })).toThrow(RangeError);
    expect(() => train({ batchSize: 0 })).toThrow(/options\.batchSize must be in \[1, \d+\], got 0/);
    expect(() => train({ batchSize: 2.5 })).toThrow(TypeError);
    expect(() => train({ batchSize: 2.5 })).toThrow(/options\.batchSize must be an integer, got 2\.5/);
  });

  it('lr missing, negative, not a number, NaN', () => {
    expect(() => train({ lr: undefined })).toThrow(TypeError);
    expect(() => train({ lr: undefined })).toThrow(/Model\.trainEpoch: options\.lr is required/);
    expect(() => train({ lr: -0.1 })).toThrow(RangeError);
    expect(() => train({ lr: -0.1 })).toThrow(/options\.lr must be in \[0, 1000\], got -0\.1/);
    expect(() => train({ lr: NaN })).toThrow(/options\.lr must be in \[0, 1000\], got nan/i);
    expect(() => train({ lr: bad('0.1') })).toThrow(TypeError);
  });

  it('per-step lrs of the wrong length or with a bad entry', () => {
    // 8 samples / batchSize 4 = 2 steps.
    expect(() => train({ lr: [0.1, 0.1, 0.1] })).toThrow(RangeError);
    expect(() => train({ lr: [0.1, 0.1, 0.1] })).toThrow(/options\.lr must have length 2, got 3/);
    expect(() => train({ lr: new Float32Array(1) })).toThrow(/options\.lr must have length 2, got 1/);
    // with dropLast, 8 samples in batches of 3 are 2 steps, not 3
    expect(() => train({ lr: [0.1, 0.1, 0.1], dropLast: true, batchSize: 3 })).toThrow(/options\.lr must have length 2, got 3/);
    expect(() => train({ lr: [0.1, -1] })).toThrow(/options\.lr\[1\] must be in \[0, 1000\], got -1/);
    expect(() => train({ lr: [0.1, bad('x')] })).toThrow(/options\.lr\[1\] must be a number, got 'x'/);
  });

  it('an unknown option is named', () => {
    expect(() => train({ lrs: [0.1, 0.1] })).toThrow(TypeError);
    expect(() => train({ lrs: [0.1, 0.1] })).toThrow(/Model\.trainEpoch: options\.lrs is not an option/);
  });

  it('cropPadding larger than the image', () => {
    expect(() => train({ cropPadding: 9 })).toThrow(RangeError);
    expect(() => train({ cropPadding: 9 })).toThrow(/options\.cropPadding must be in \[0, 8\], got 9/);
    expect(() => train({ cropPadding: -1 })).toThrow(RangeError);
  });

  it('normalize with the wrong length, std 0, or not an object', () => {
    expect(() => train({ normalize: { mean: [0.5, 0.5], std: [1, 1, 1] } })).toThrow(RangeError);
    expect(() => train({ normalize: { mean: [0.5, 0.5], std: [1, 1, 1] } })).toThrow(/options\.normalize\.mean must have length 3, got 2/);
    expect(() => train({ normalize: { mean: [0.5, 0.5, 0.5], std: [1, 0, 1] } })).toThrow(RangeError);
    expect(() => train({ normalize: { mean: [0.5, 0.5, 0.5], std: [1, 0, 1] } })).toThrow(/options\.normalize\.std\[1\] must be in \[1e-12, .*\], got 0/);
    expect(() => train({ normalize: { mean: [0.5, 'a', 0.5], std: [1, 1, 1] } as never })).toThrow(/options\.normalize\.mean\[1\] must be a number, got 'a'/);
  });

  it('mixupAlpha negative', () => {
    expect(() => train({ mixupAlpha: -0.2 })).toThrow(RangeError);
    expect(() => train({ mixupAlpha: -0.2 })).toThrow(/options\.mixupAlpha must be in \[0, 1000\], got -0\.2/);
  });

  it('logitOffsets of the wrong length or not an array', () => {
    expect(() => train({ logitOffsets: [0, 0] })).toThrow(RangeError);
    expect(() => train({ logitOffsets: [0, 0] })).toThrow(/options\.logitOffsets must have length 3, got 2/);
    expect(() => train({ logitOffsets: bad(new Float64Array(3)) })).toThrow(TypeError);
    expect(() => train({ logitOffsets: bad(new Float64Array(3)) })).toThrow(/options\.logitOffsets must be a Float32Array or an array of numbers/);
    expect(() => train({ logitOffsets: [0, Infinity, 0] })).toThrow(/options\.logitOffsets\[1\] must be in/);
  });

  it('labelSmoothing > 1', () => {
    expect(() => train({ labelSmoothing: [0.1, 1.5, 0] })).toThrow(RangeError);
    expect(() => train({ labelSmoothing: [0.1, 1.5, 0] })).toThrow(/options\.labelSmoothing\[1\] must be in \[0, 1\], got 1\.5/);
  });

  it("bnMode 'foo'", () => {
    expect(() => train({ bnMode: bad('foo') })).toThrow(RangeError);
    expect(() => train({ bnMode: bad('foo') })).toThrow(/options\.bnMode must be one of 'train', 'eval', got 'foo'/);
    expect(() => train({ bnMode: bad(1) })).toThrow(TypeError);
  });

  it('booleans must be booleans', () => {
    expect(() => train({ hflip: bad('yes') })).toThrow(TypeError);
    expect(() => train({ hflip: bad('yes') })).toThrow(/options\.hflip must be a boolean, got 'yes'/);
    expect(() => train({ dropLast: bad(1) })).toThrow(/options\.dropLast must be a boolean, got 1/);
  });

  it('a dataset with a label >= numClasses: RangeError naming numClasses', () => {
    const d = new Dataset(source(4, 3, 8, 8, 5)); // labels 0..3
    expect(() => train({}, d, range(4))).toThrow(RangeError);
    expect(() => train({}, d, range(4))).toThrow(/Model\.trainEpoch: dataset has label 3, out of range for numClasses = 3/);
    expect(() => model.evaluate(d)).toThrow(/Model\.evaluate: dataset has label 3, out of range for numClasses = 3/);
    d.dispose();
  });

  it('a dataset with the wrong channel count', () => {
    const d = new Dataset(source(4, 1, 8, 8));
    expect(() => train({}, d, range(4))).toThrow(RangeError);
    expect(() => train({}, d, range(4))).toThrow(/dataset has 1 channel\(s\), the model expects inChannels = 3/);
    d.dispose();
  });

  it('a dataset of the wrong image size when imageSize is set', () => {
    const m = new Model({ arch: 'resnet8', numClasses: 3, imageSize: 16 });
    expect(() => m.trainEpoch(ds, idx, { lr: 0.1 })).toThrow(RangeError);
    expect(() => m.trainEpoch(ds, idx, { lr: 0.1 })).toThrow(/dataset images are 8x8, the model expects imageSize = 16/);
    expect(() => m.evaluate(ds)).toThrow(/Model\.evaluate: dataset images are 8x8, the model expects imageSize = 16/);
    m.dispose();
  });

  it("batchSize 1 with bnMode 'train' (allowed with bnMode 'eval')", async () => {
    expect(() => train({ batchSize: 1 })).toThrow(RangeError);
    expect(() => train({ batchSize: 1 })).toThrow(/options\.batchSize must be > 1 with bnMode 'train'/);
    const r = await train({ batchSize: 1, bnMode: 'eval' }, ds, range(2));
    expect(r.steps).toBe(2);
  });

  it('none of the rejected calls left the model busy', () => {
    expect(model.busy).toBe(false);
  });
});

describe('evaluate argument checks (thrown synchronously)', () => {
  const model = small();
  const ds = smallData(8, 8);

  it('batchSize, bnMode, booleans, normalize', () => {
    expect(() => model.evaluate(ds, { batchSize: 0 })).toThrow(RangeError);
    expect(() => model.evaluate(ds, { batchSize: 0 })).toThrow(/Model\.evaluate: options\.batchSize must be in \[1, \d+\], got 0/);
    expect(() => model.evaluate(ds, { batchSize: 2.5 })).toThrow(TypeError);
    expect(() => model.evaluate(ds, { bnMode: bad('foo') })).toThrow(RangeError);
    expect(() => model.evaluate(ds, { bnMode: bad('foo') })).toThrow(/options\.bnMode must be one of 'eval', 'train', got 'foo'/);
    expect(() => model.evaluate(ds, { bnMode: 'train', batchSize: 1 })).toThrow(/options\.batchSize must be > 1 with bnMode 'train'/);
    expect(() => model.evaluate(ds, { logits: bad('yes') })).toThrow(/options\.logits must be a boolean/);
    expect(() => model.evaluate(ds, { normalize: { mean: [0], std: [1] } })).toThrow(/options\.normalize\.mean must have length 3, got 1/);
  });

  it('indices', () => {
    expect(() => model.evaluate(ds, { indices: bad([0, 1]) })).toThrow(TypeError);
    expect(() => model.evaluate(ds, { indices: bad([0, 1]) })).toThrow(/Model\.evaluate: indices must be an Int32Array, got an array/);
    expect(() => model.evaluate(ds, { indices: Int32Array.from([1, 2, 3, 42]) })).toThrow(RangeError);
    expect(() => model.evaluate(ds, { indices: Int32Array.from([1, 2, 3, 42]) })).toThrow(/indices\[3\] = 42 out of range \[0, 8\)/);
    expect(() => model.evaluate(ds, { indices: Int32Array.from([-5]) })).toThrow(/indices\[0\] = -5 out of range/);
  });

  it('dataset not a Dataset', () => {
    expect(() => model.evaluate(bad({}))).toThrow(TypeError);
    expect(() => model.evaluate(bad({}))).toThrow(/Model\.evaluate: dataset must be a Dataset/);
  });

  it('a good call still works after all that', async () => {
    const r = await model.evaluate(ds, { indices: Int32Array.from([7, 0]), logits: true });
    expect(r.preds.length).toBe(2);
    expect(r.logits!.length).toBe(6);
  });
});

describe('setOptimizer argument checks', () => {
  const model = small();
  it("trainable 'head'", () => {
    expect(() => model.setOptimizer({ trainable: bad('head') })).toThrow(RangeError);
    expect(() => model.setOptimizer({ trainable: bad('head') })).toThrow(
      /Model\.setOptimizer: options\.trainable must be one of 'all', 'classifier', 'backbone', 'peft', 'last-block', got 'head'/,
    );
  });
  it('momentum 2, weightDecay -1', () => {
    expect(() => model.setOptimizer({ momentum: 2 })).toThrow(RangeError);
    expect(() => model.setOptimizer({ momentum: 2 })).toThrow(/options\.momentum must be in \[0, 1\], got 2/);
    expect(() => model.setOptimizer({ weightDecay: -1 })).toThrow(/options\.weightDecay must be in \[0, 1000\], got -1/);
  });
  it('nesterov with momentum 0', () => {
    expect(() => model.setOptimizer({ nesterov: true, momentum: 0 })).toThrow(RangeError);
    expect(() => model.setOptimizer({ nesterov: true, momentum: 0 })).toThrow(/options\.nesterov needs momentum > 0/);
    expect(() => model.setOptimizer({ nesterov: bad('true') })).toThrow(/options\.nesterov must be a boolean/);
  });
  it('setPerformance amp', () => {
    // (the TS layer warns "CUDA-only" for any amp other than 'none', even an invalid one, before the native check)
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    expect(() => model.setPerformance({ amp: bad('fp8') })).toThrow(RangeError);
    expect(() => model.setPerformance({ amp: bad('fp8') })).toThrow(/Model\.setPerformance: options\.amp must be one of 'none', 'bf16', 'fp16', got 'fp8'/);
    warn.mockRestore();
  });
  it('setPerformance lossScale', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    expect(() => model.setPerformance({ amp: 'fp16', lossScale: 0 })).toThrow(/options\.lossScale must be in \[1, 1e\+30\], got 0/);
    expect(() => model.setPerformance({ lossScale: bad('big') })).toThrow(TypeError);
    model.setPerformance({ amp: 'none', lossScale: 1024 }); // accepted (fp16 uses it; a CPU model ignores amp)
    warn.mockRestore();
  });
  it('setCudaDeterministic takes a boolean only', () => {
    expect(() => setCudaDeterministic(bad(1))).toThrow(TypeError);
    expect(() => setCudaDeterministic(bad(1))).toThrow(/setCudaDeterministic: on must be a boolean, got 1/);
    setCudaDeterministic(true); // a flag for CUDA work; harmless without CUDA
    setCudaDeterministic(false);
  });
});

describe('loadStateDict', () => {
  const model = small();
  const good = model.stateDict();
  const replace = (name: string, patch: Record<string, unknown>): StateDict =>
    good.map((e) => (e.name === name ? ({ ...e, ...patch } as never) : e));

  it('not an array', () => {
    expect(() => model.loadStateDict(bad({}))).toThrow(TypeError);
    expect(() => model.loadStateDict(bad({}))).toThrow(/Model\.loadStateDict: state must be an array of \{name, shape, dtype, data\}, got an object/);
    expect(() => model.loadStateDict(bad(undefined))).toThrow(/got undefined/);
    expect(() => model.loadStateDict(bad([42]))).toThrow(/state\[0\] must be an object, got 42/);
    expect(() => model.loadStateDict(bad([{ name: 7 }]))).toThrow(/state\[0\]\.name must be a string, got 7/);
  });

  it('an entry with the wrong shape names the key and both shapes', () => {
    const s = replace('fc.weight', { shape: [4, 64], data: new Float32Array(256) });
    expect(() => model.loadStateDict(s)).toThrow(/does not match resnet8 \(1 problem\(s\)\):\n {2}'fc\.weight': shape \[4, 64\], expected \[3, 64\]/);
  });

  it('a missing key, an unexpected key, a duplicate key', () => {
    expect(() => model.loadStateDict(good.filter((e) => e.name !== 'fc.bias'))).toThrow(/missing key 'fc\.bias'/);
    const extra = [...good, { name: 'fc.extra', shape: [1], dtype: 'float32' as const, data: new Float32Array(1) }];
    expect(() => model.loadStateDict(extra)).toThrow(/unexpected key 'fc\.extra'/);
    expect(() => model.loadStateDict([...good, good[0]])).toThrow(new RegExp(`duplicate key '${good[0].name.replace('.', '\\.')}'`));
  });

  it('a wrong dtype', () => {
    expect(() => model.loadStateDict(replace('bn1.num_batches_tracked', { dtype: 'float32', data: new Float32Array(1) }))).toThrow(
      /'bn1\.num_batches_tracked': dtype float32, expected int64/,
    );
    expect(() => model.loadStateDict(replace('fc.bias', { dtype: 'float16' }))).toThrow(/'fc\.bias': dtype float16, expected float32/);
  });

  it('data of the wrong typed array or length', () => {
    expect(() => model.loadStateDict(replace('fc.bias', { data: new Float64Array(3) }))).toThrow(/'fc\.bias': data must be a Float32Array/);
    expect(() => model.loadStateDict(replace('fc.bias', { data: [0, 0, 0] }))).toThrow(/'fc\.bias': data must be a Float32Array/);
    expect(() => model.loadStateDict(replace('bn1.num_batches_tracked', { data: new Float32Array(1) }))).toThrow(
      /'bn1\.num_batches_tracked': data must be a BigInt64Array/,
    );
    expect(() => model.loadStateDict(replace('fc.bias', { data: new Float32Array(4) }))).toThrow(/'fc\.bias': data has 4 elements, expected 3/);
  });

  it('several problems are all listed, and nothing is loaded', () => {
    const s = replace('fc.weight', { shape: [64, 3] })
      .filter((e) => e.name !== 'conv1.weight')
      .map((e) => (e.name === 'fc.bias' ? { ...e, data: new Float32Array([9, 9, 9]), dtype: 'int64' as const } : e));
    s.push({ name: 'bogus', shape: [], dtype: 'float32', data: new Float32Array(1) });
    let msg = '';
    try {
      model.loadStateDict(s);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/\(4 problem\(s\)\)/);
    expect(msg).toMatch(/'fc\.weight': shape \[64, 3\], expected \[3, 64\]/);
    expect(msg).toMatch(/'fc\.bias': dtype int64, expected float32/);
    expect(msg).toMatch(/unexpected key 'bogus'/);
    expect(msg).toMatch(/missing key 'conv1\.weight'/);
    // strict and atomic: the valid entries of a bad state were not copied in either
    const after = model.stateDict();
    for (let i = 0; i < good.length; i++) expect(after[i].data, good[i].name).toEqual(good[i].data);
  });

  it('a correct state loads', () => {
    const other = new Model({ arch: 'resnet8', numClasses: 3, seed: 7 });
    model.loadStateDict(other.stateDict());
    expect(model.stateDict().find((e) => e.name === 'fc.weight')!.data).toEqual(other.stateDict().find((e) => e.name === 'fc.weight')!.data);
    other.dispose();
  });
});

describe('disposed handles', () => {
  it('every method of a disposed model throws "disposed"; dispose twice is fine', () => {
    const model = small();
    const ds = smallData(4, 8);
    const state = model.stateDict();
    model.dispose();
    expect(model.disposed).toBe(true);
    expect(model.busy).toBe(false);
    expect(() => model.stateDict()).toThrow(/Model\.stateDict: model has been disposed/);
    expect(() => model.trainEpoch(ds, range(4), { lr: 0.1 })).toThrow(/Model\.trainEpoch: model has been disposed/);
    expect(() => model.evaluate(ds)).toThrow(/Model\.evaluate: model has been disposed/);
    expect(() => model.loadStateDict(state)).toThrow(/Model\.loadStateDict: model has been disposed/);
    expect(() => model.info).toThrow(/Model\.info: model has been disposed/);
    expect(() => model.setOptimizer({})).toThrow(/Model\.setOptimizer: model has been disposed/);
    expect(() => model.setPerformance({})).toThrow(/Model\.setPerformance: model has been disposed/);
    expect(() => model.gradients()).toThrow(/Model\.gradients: model has been disposed/);
    expect(() => model.dispose()).not.toThrow();
    expect(() => model[Symbol.dispose]()).not.toThrow();
    ds.dispose();
  });

  it('a disposed dataset: its getters and trainEpoch/evaluate throw "disposed"; dispose twice is fine', () => {
    const model = small();
    const ds = smallData(4, 8);
    ds.dispose();
    expect(ds.disposed).toBe(true);
    expect(() => ds.dispose()).not.toThrow();
    expect(() => ds.size).toThrow(/Dataset has been disposed/);
    expect(() => ds.shape).toThrow(/Dataset has been disposed/);
    expect(() => model.trainEpoch(ds, range(4), { lr: 0.1 })).toThrow(/Model\.trainEpoch: dataset: Dataset has been disposed/);
    expect(() => model.evaluate(ds)).toThrow(/Model\.evaluate: dataset: Dataset has been disposed/);
    model.dispose();
  });

  it('`using` disposes at the end of the block', () => {
    let m: Model, d: Dataset;
    {
      using model = small();
      using ds = smallData(4, 8);
      m = model;
      d = ds;
      expect(model.disposed).toBe(false);
    }
    expect(m.disposed).toBe(true);
    expect(d.disposed).toBe(true);
  });
});

describe('busy models', () => {
  it('while trainEpoch runs, the same model refuses other calls with "busy"; afterwards they work', async () => {
    const model = small();
    const ds = new Dataset(source(256, 3, 16, 16));
    const p = model.trainEpoch(ds, range(256), { lr: 0.01, batchSize: 32 });
    expect(model.busy).toBe(true);
    // the long calls refuse with a rejected Promise (issue 14), the others throw
    await expect(model.trainEpoch(ds, range(8), { lr: 0.01 })).rejects.toThrow(/Model\.trainEpoch: model is busy/);
    await expect(model.evaluate(ds)).rejects.toThrow(/Model\.evaluate: model is busy/);
    expect(() => model.stateDict()).toThrow(/Model\.stateDict: model is busy/);
    expect(() => model.loadStateDict([])).toThrow(/Model\.loadStateDict: model is busy/);
    expect(() => model.setOptimizer({})).toThrow(/Model\.setOptimizer: model is busy/);
    expect(() => model.gradients()).toThrow(/Model\.gradients: model is busy/);
    expect(() => model.dispose()).toThrow(/Model\.dispose: model is busy/);
    expect(model.disposed).toBe(false);
    expect(model.info.arch).toBe('resnet8'); // info stays readable
    const r = await p;
    expect(r.steps).toBe(8);
    expect(model.busy).toBe(false);
    expect(model.stateDict().length).toBeGreaterThan(0);
    const ev = await model.evaluate(ds, { indices: range(4) });
    expect(ev.preds.length).toBe(4);
    await expect(model.trainEpoch(ds, range(8), { lr: 0.01, batchSize: 4 })).resolves.toMatchObject({ steps: 2 });
    model.dispose();
    expect(model.disposed).toBe(true);
    ds.dispose();
  });

  it('evaluate makes the model busy too', async () => {
    const model = small();
    const ds = new Dataset(source(256, 3, 16, 16));
    const p = model.evaluate(ds, { batchSize: 16 });
    await expect(model.trainEpoch(ds, range(8), { lr: 0.01 })).rejects.toThrow(/busy/);
    await expect(model.evaluate(ds)).rejects.toThrow(/busy/);
    expect((await p).preds.length).toBe(256);
    expect(model.busy).toBe(false);
  });

  it('two models train concurrently (and on the same dataset)', async () => {
    const a = small(), b = new Model({ arch: 'resnet8', numClasses: 3, seed: 1 });
    const ds = new Dataset(source(256, 3, 16, 16));
    const pa = a.trainEpoch(ds, range(256), { lr: 0.01, batchSize: 32 });
    const pb = b.trainEpoch(ds, range(256), { lr: 0.01, batchSize: 32 });
    expect(a.busy && b.busy).toBe(true);
    const [ra, rb] = await Promise.all([pa, pb]);
    expect(ra.steps).toBe(8);
    expect(rb.steps).toBe(8);
    expect([...ra.losses, ...rb.losses].every(Number.isFinite)).toBe(true);
  });
});

describe('the event loop stays free while training', () => {
  it('a 10 ms interval keeps firing through >= 1 s of training', async () => {
    const model = new Model({ arch: 'resnet20', numClasses: 3 });
    const n = 1024; // one epoch is ~0.8-2 s on 2 cores
    const ds = new Dataset(source(n, 3, 16, 16));
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 10);
    const t0 = performance.now();
    let epochs = 0;
    let epochMax = 0;
    try {
      // epochs back to back until at least 1 s has passed, so the check holds on fast machines too
      while (performance.now() - t0 < 1000 && epochs < 50) {
        const e0 = performance.now();
        await model.trainEpoch(ds, range(n), { lr: 0.01, batchSize: 32 });
        epochMax = Math.max(epochMax, performance.now() - e0);
        epochs++;
      }
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - t0;
    let maxGap = ticks.length ? ticks[0] - t0 : elapsed;
    for (let i = 1; i < ticks.length; i++) maxGap = Math.max(maxGap, ticks[i] - ticks[i - 1]);
    console.log(
      `event loop: ${epochs} epoch(s) in ${elapsed.toFixed(0)} ms (longest ${epochMax.toFixed(0)} ms), ` +
        `${ticks.length} ticks, max gap ${maxGap.toFixed(1)} ms`,
    );
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(ticks.length).toBeGreaterThanOrEqual(20);
    expect(ticks.length).toBeGreaterThanOrEqual(elapsed / 10 / 4); // at least a quarter of the ideal rate
    expect(maxGap).toBeLessThan(250);
    expect(maxGap).toBeLessThan(elapsed / 4);
    expect(maxGap).toBeLessThan(epochMax / 4); // the loop ran during a call, not only between calls
  });
});

describe('a trailing batch of one', () => {
  it('is refused before any step runs when BatchNorm is in train mode (it would fail inside libtorch part-way)', async () => {
    // 3 samples in batches of 2 leave a last batch of 1: train-mode BatchNorm cannot normalise it.
    const model = new Model({ arch: 'resnet18', numClasses: 3 });
    const ds = smallData(3, 8);
    const before = model.stateDict();
    expect(() => model.trainEpoch(ds, range(3), { lr: 0.01, batchSize: 2 })).toThrow(RangeError);
    expect(() => model.trainEpoch(ds, range(3), { lr: 0.01, batchSize: 2 })).toThrow(/last batch would hold 1 sample \(3 indices, batchSize 2\)/);
    expect(() => model.evaluate(ds, { batchSize: 2, bnMode: 'train' })).toThrow(/last batch would hold 1 sample/);
    const after = model.stateDict();
    for (let i = 0; i < before.length; i++) {
      expect(Buffer.from(after[i].data.buffer).equals(Buffer.from(before[i].data.buffer)), before[i].name).toBe(true);
    }
    expect(model.busy).toBe(false);
    // allowed: dropLast, BatchNorm in eval mode, or an evaluation in eval mode
    await expect(model.trainEpoch(ds, range(3), { lr: 0.01, batchSize: 2, dropLast: true })).resolves.toMatchObject({ steps: 1 });
    await expect(model.trainEpoch(ds, range(3), { lr: 0.01, batchSize: 2, bnMode: 'eval' })).resolves.toMatchObject({ steps: 2 });
    await expect(model.evaluate(ds, { batchSize: 2 })).resolves.toBeDefined();
    model.dispose();
  });
});

describe('disposing a dataset during a call', () => {
  it('the running call completes and the dataset then reports disposed', async () => {
    const model = small();
    const ds = new Dataset(source(256, 3, 16, 16));
    const p = model.trainEpoch(ds, range(256), { lr: 0.01, batchSize: 32 });
    ds.dispose();
    expect(ds.disposed).toBe(true);
    const r = await p;
    expect(r.steps).toBe(8);
    expect(r.samples).toBe(256);
    expect(Array.from(r.losses).every(Number.isFinite)).toBe(true);
    expect(ds.disposed).toBe(true);
    expect(() => model.trainEpoch(ds, range(8), { lr: 0.01 })).toThrow(/disposed/);
    model.dispose();
  });
});
