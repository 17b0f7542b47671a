/**
 * Wrong types into the library (what TypeScript does not stop a JavaScript caller from passing):
 * every library function exported from src/index.ts answers with a TypeError or RangeError that
 * names the function, the argument and what it expected, never an internal error
 * ("Cannot read properties of undefined") from deeper down. One validator (src/args.ts) does it all.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arg, describe as describeValue, is } from '../src/args.js';
import * as lib from '../src/index.js';

let dir: string;
let ckpt: string;
let classifier: lib.Classifier;
const META: lib.ModelMeta = { arch: 'resnet8', numClasses: 3, inChannels: 1, imageSize: 8 };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-args-'));
  ckpt = path.join(dir, 'm.safetensors');
  using model = new lib.Model({ arch: 'resnet8', numClasses: 3, inChannels: 1 });
  await lib.saveCheckpoint(ckpt, model, META);
  classifier = await lib.loadModel(ckpt);
});
afterAll(() => {
  classifier?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The error a call throws or rejects with (undefined if it succeeds). */
async function errorOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  return undefined;
}

type Case = [label: string, call: () => unknown, type: typeof TypeError | typeof RangeError, message: RegExp];

const any = (v: unknown) => v as never;

/** Keyed by the exported name they exercise: the coverage check below asks for every one. */
const CASES: Record<string, Case[]> = {
  Classifier: [
    ['predict(Float32Array)', () => classifier.predict(any(new Float32Array(64))), TypeError,
      /^Classifier\.predict: images must be a Uint8Array \(uint8 NCHW pixels\) or an ImageSet, got a Float32Array$/],
    ['predict(string)', () => classifier.predict(any('img.png')), TypeError, /images must be a Uint8Array .* got 'img.png'$/],
    ['predict(null)', () => classifier.predict(any(null)), TypeError, /images must be .* got null$/],
    ['predict()', () => classifier.predict(any(undefined)), TypeError, /images must be .* got undefined$/],
    ['predict(number[])', () => classifier.predict(any([1, 2, 3])), TypeError, /got an array of length 3$/],
    ['predict({})', () => classifier.predict(any({})), TypeError, /^Classifier\.predict: images \(an ImageSet\)\.images must be a Uint8Array, got undefined$/],
    ['predict ImageSet with string n', () => classifier.predict(any({ images: new Uint8Array(64), n: '1', channels: 1, height: 8, width: 8 })), TypeError,
      /images \(an ImageSet\)\.n must be an integer >= 0, got '1'/],
    ['predict options not an object', () => classifier.predict(new Uint8Array(64), any('fast')), TypeError, /^Classifier\.predict: options must be an object, got 'fast'$/],
    ['predict options.logits', () => classifier.predict(new Uint8Array(64), any({ logits: 1 })), TypeError, /options\.logits must be a boolean, got 1$/],
    ['predict misspelt option', () => classifier.predict(new Uint8Array(64), any({ logit: true })), TypeError, /options: unknown option 'logit' \(known: logits, batchSize, shape\)/],
    ['predict options.batchSize 0', () => classifier.predict(new Uint8Array(64), { batchSize: 0 }), RangeError, /options\.batchSize must be an integer >= 1, got 0/],
    ['new Classifier(no model)', () => new lib.Classifier(any({}), META), TypeError, /^Classifier: model must be a Model, got an object$/],
    ['new Classifier(bad meta)', () => new lib.Classifier(classifier.model, any({ ...META, arch: 'vgg' })), RangeError, /^Classifier: meta\.arch must be one of 'resnet8', .* got 'vgg'$/],
    ['new Classifier(maxBatch)', () => new lib.Classifier(classifier.model, META, { maxBatch: 1.5 }), TypeError, /options\.maxBatch must be an integer >= 1, got 1.5/],
  ],
  loadModel: [
    ['non-string path', () => lib.loadModel(any(42)), TypeError, /^loadModel: file must be a non-empty string, got 42$/],
    ['empty path', () => lib.loadModel(''), RangeError, /^loadModel: file must be a non-empty string, got ''$/],
    ['options a string', () => lib.loadModel(ckpt, any('cpu')), TypeError, /^loadModel: options must be an object, got 'cpu'$/],
    ['bad device', () => lib.loadModel(ckpt, any({ device: 'gpu' })), RangeError, /^loadModel: options\.device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'$/],
    ['device a number', () => lib.loadModel(ckpt, any({ device: 0 })), TypeError, /options\.device must be a device string/],
    ['maxBatch 0', () => lib.loadModel(ckpt, { maxBatch: 0 }), RangeError, /options\.maxBatch must be an integer >= 1, got 0/],
    ['unknown option', () => lib.loadModel(ckpt, any({ devise: 'cpu' })), TypeError, /unknown option 'devise'/],
  ],
  evaluate: [
    ['no classifier', () => lib.evaluate(any(null), any({})), TypeError, /^evaluate: classifier must be a Classifier, got null$/],
    ['set is bytes', () => lib.evaluate(classifier, any(new Uint8Array(64))), TypeError, /^evaluate: set must be an object, got a Uint8Array$/],
    ['set without labels', () => lib.evaluate(classifier, any({ images: new Uint8Array(64), n: 1, channels: 1, height: 8, width: 8, numClasses: 3 })), TypeError,
      /^evaluate: set\.labels must be an Int32Array, got undefined$/],
    ['trainCounts', () => lib.evaluate(classifier, lib.gridTask({ n: 3, size: 8, numClasses: 3 }), any({ trainCounts: 'many' })), TypeError,
      /options\.trainCounts must be an array, got 'many'/],
  ],
  checkCompatible: [
    ['meta null', () => lib.checkCompatible(any(null), any({})), TypeError, /^checkCompatible: meta must be an object, got null$/],
    ['set without channels', () => lib.checkCompatible(META, any({ height: 8, width: 8 })), TypeError, /^checkCompatible: set\.channels must be an integer >= 1, got undefined$/],
  ],
  readSafetensors: [['path undefined', () => lib.readSafetensors(any(undefined)), TypeError, /^readSafetensors: file must be a non-empty string, got undefined$/]],
  writeSafetensors: [
    ['dict not an array', () => lib.writeSafetensors(path.join(dir, 'x'), any({})), TypeError, /^writeSafetensors: dict must be an array, got an object$/],
    ['entry data', () => lib.writeSafetensors(path.join(dir, 'x'), any([{ name: 'w', shape: [1], dtype: 'float32', data: [1] }])), TypeError,
      /^writeSafetensors: dict\[0\]\.data must be a Float32Array or BigInt64Array, got an array of length 1$/],
    ['metadata values', () => lib.writeSafetensors(path.join(dir, 'x'), [], any({ epoch: 3 })), TypeError, /^writeSafetensors: metadata\.epoch must be a string, got 3$/],
  ],
  saveCheckpoint: [
    ['model', () => lib.saveCheckpoint(path.join(dir, 'y'), any(null), META), TypeError, /^saveCheckpoint: model must be a Model, got null$/],
    ['meta.numClasses', () => lib.saveCheckpoint(path.join(dir, 'y'), classifier.model, any({ ...META, numClasses: '3' })), TypeError,
      /^saveCheckpoint: meta\.numClasses must be an integer >= 1, got '3'$/],
    ['meta.normalize per channel', () => lib.saveCheckpoint(path.join(dir, 'y'), classifier.model, { ...META, normalize: { mean: [0.5, 0.5], std: [1, 1] } }), RangeError,
      /^saveCheckpoint: meta\.normalize: mean and std need 1 value\(s\) \(inChannels\), got 2 and 2$/],
  ],
  saveState: [['meta missing', () => lib.saveState(path.join(dir, 'z'), [], any(undefined)), TypeError, /^saveState: meta must be an object, got undefined$/]],
  readCheckpoint: [['path a Buffer', () => lib.readCheckpoint(any(Buffer.from('x'))), TypeError, /^readCheckpoint: file must be a non-empty string, got a Buffer$/]],
  checkpointSummary: [['path null', () => lib.checkpointSummary(any(null)), TypeError, /^checkpointSummary: file must be a non-empty string, got null$/]],
  loadIdxDataset: [
    ['no options', () => lib.loadIdxDataset(any(undefined)), TypeError, /^loadIdxDataset: options must be an object, got undefined$/],
    ['imagesPath missing', () => lib.loadIdxDataset(any({ labelsPath: 'l' })), TypeError, /^loadIdxDataset: options\.imagesPath must be a non-empty string, got undefined$/],
  ],
  loadFashionMnist: [['split', () => lib.loadFashionMnist(any('val')), RangeError, /^loadFashionMnist: split must be one of 'train', 'test', got 'val'$/]],
  loadCifar: [
    ['a string', () => lib.loadCifar(any('/data/cifar')), TypeError, /^loadCifar: options must be an object, got '\/data\/cifar'$/],
    ['variant', () => lib.loadCifar(any({ dir: dir, variant: 'cifar11', split: 'test' })), RangeError, /^loadCifar: options\.variant must be one of 'cifar10', 'cifar100', got 'cifar11'$/],
  ],
  loadListDataset: [
    ['no options', () => lib.loadListDataset(any(undefined)), TypeError, /^loadListDataset: options must be an object, got undefined$/],
    ['listPath', () => lib.loadListDataset(any({ listPath: 3, root: dir, size: 8, channels: 3 })), TypeError, /^loadListDataset: options\.listPath must be a non-empty string, got 3$/],
  ],
  gridTask: [
    ['n a string', () => lib.gridTask(any({ n: '3' })), TypeError, /^gridTask: options\.n must be an integer >= 0, got '3'$/],
    ['unknown option', () => lib.gridTask(any({ n: 3, classes: 4 })), TypeError, /^gridTask: options: unknown option 'classes'/],
  ],
};

describe('wrong types into the library', () => {
  for (const [name, cases] of Object.entries(CASES)) {
    describe(name, () => {
      it.each(cases)('%s', async (_label, call, type, message) => {
        const e = await errorOf(call);
        expect(e).toBeInstanceOf(type);
        expect((e as Error).message).toMatch(message);
        expect((e as Error).message).not.toMatch(/Cannot read properties|is not a function|undefined \(reading/);
      });
    });
  }

  it('covers every library entry point exported from src/index.ts that reads user input', () => {
    const entryPoints = ['Classifier', 'loadModel', 'evaluate', 'checkCompatible', 'readSafetensors', 'writeSafetensors', 'saveCheckpoint', 'saveState',
      'readCheckpoint', 'checkpointSummary', 'loadIdxDataset', 'loadFashionMnist', 'loadCifar', 'loadListDataset', 'gridTask'];
    for (const name of entryPoints) {
      expect(typeof (lib as Record<string, unknown>)[name], name).toBe('function');
      expect(CASES[name], name).toBeDefined();
    }
  });
});

describe('the validator', () => {
  it('describes values briefly', () => {
    expect([null, undefined, 3, 'ab', [1], {}, new Float32Array(2), new Int8Array(1), () => 1, 2n].map(describeValue)).toEqual(
      ['null', 'undefined', '3', "'ab'", 'an array of length 1', 'an object', 'a Float32Array', 'an Int8Array', 'a function', '2n'],
    );
  });

  it('checks nested objects and arrays, naming the path to the bad value', () => {
    const check = is.object({ a: is.array(is.object({ b: is.integer({ min: 0, max: 9 }) })) });
    expect(() => arg('f', 'x', { a: [{ b: 1 }, { b: 12 }] }, check)).toThrow(new RangeError('f: x.a[1].b must be an integer in [0, 9], got 12'));
    expect(() => arg('f', 'x', { a: [{ b: NaN }] }, check)).toThrow(new TypeError('f: x.a[0].b must be an integer in [0, 9], got NaN'));
    expect(arg('f', 'x', { a: [{ b: 3 }] }, check)).toEqual({ a: [{ b: 3 }] });
  });
});
