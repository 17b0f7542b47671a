/**
 * The CIFAR ResNet of native/resnet.cc in TensorFlow.js layers (NHWC, the layout tfjs's CPU backend
 * convolves in), trained the way Model.trainEpoch trains: gather a batch by index, /255 and per-channel
 * normalisation, forward in training mode, softmax cross-entropy, backward, SGD momentum 0.9 with
 * weight decay 5e-4 on every parameter (as 0.5*wd*sum(p^2) in the loss: the same gradient).
 *
 * Option-A shortcut: tfjs has no gradient for stridedSlice, so x[:, ::2, ::2, :] is written as a 1x1
 * average pool with stride 2 (the same values, with a gradient) followed by zero channel padding, in a
 * custom layer: the same parameter-free shortcut as native, no extra convolution.
 */
import * as tf from '@tensorflow/tfjs';
import type { Case } from './common.js';

const DEPTHS: Record<string, number> = { resnet8: 1, resnet20: 3, resnet32: 5, resnet56: 9, resnet110: 18 };
const WEIGHT_DECAY = 5e-4;

class OptionAShortcut extends tf.layers.Layer {
  static readonly className = 'OptionAShortcut';
  constructor(private readonly padChannels: number) {
    super({});
  }
  override computeOutputShape(s: tf.Shape): tf.Shape {
    const half = (d: number | null) => (d == null ? null : Math.ceil(d / 2));
    return [s[0], half(s[1]), half(s[2]), (s[3] as number) + 2 * this.padChannels];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const p = this.padChannels;
      return tf.pad(tf.avgPool(x, 1, 2, 'valid'), [[0, 0], [0, 0], [0, 0], [p, p]]);
    });
  }
}

function cifarResNet(arch: string, channels: number, size: number, classes: number): tf.LayersModel {
  const depth = DEPTHS[arch];
  const conv = (filters: number, strides: number) =>
    tf.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: 'heNormal' });
  // torch BatchNorm2d momentum 0.1 and eps 1e-5 are Keras momentum 0.9 and epsilon 1e-5
  const bn = () => tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
  const relu = (x: tf.SymbolicTensor) => tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: [size, size, channels] });
  let x = relu(apply(bn(), apply(conv(16, 1), input)));
  let cin = 16;
  [16, 32, 64].forEach((planes, stage) => {
    for (let b = 0; b < depth; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      let out = relu(apply(bn(), apply(conv(planes, stride), x)));
      out = apply(bn(), apply(conv(planes, 1), out));
      const shortcut = stride !== 1 || cin !== planes ? apply(new OptionAShortcut((planes - cin) / 2), x) : x;
      x = relu(apply(tf.layers.add(), [out, shortcut]));
      cin = planes;
    }
  });
  x = apply(tf.layers.globalAveragePooling2d({}), x);
  return tf.model({ inputs: input, outputs: apply(tf.layers.dense({ units: classes }), x) });
}

/** A model with its data on the tfjs CPU backend; `train`/`evaluate` run the given batches in order. */
export async function tfjsBench(c: Case, pixelsNCHW: Uint8Array, labels: Int32Array) {
  tf.enableProdMode(); // no debug checks, and no "install tfjs-node" banner (it cannot install offline)
  await tf.setBackend('cpu');
  const { channels: C, size: S } = c;
  const n = labels.length;
  const model = cifarResNet(c.arch, C, S, c.classes);
  // NCHW uint8 -> NHWC int32 once (tfjs has no uint8 dtype); the /255 and normalisation run per step.
  const images = tf.tidy(() => tf.tensor4d(Int32Array.from(pixelsNCHW), [n, C, S, S], 'int32').transpose([0, 2, 3, 1]));
  const y = tf.tensor1d(labels, 'int32');
  const mean = tf.scalar(0.5), std = tf.scalar(0.25);
  const opt = tf.train.momentum(0.01, 0.9);
  const input = (idx: tf.Tensor1D) => tf.gather(images, idx).toFloat().div(255).sub(mean).div(std);

  return {
    backend: tf.getBackend(),
    version: tf.version.tfjs,
    train(batches: Int32Array[]): void {
      for (const b of batches) {
        tf.tidy(() => {
          const idx = tf.tensor1d(b, 'int32');
          const x = input(idx);
          const target = tf.oneHot(tf.gather(y, idx), c.classes);
          const cost = opt.minimize(() => {
            const logits = model.apply(x, { training: true }) as tf.Tensor;
            const ce = tf.losses.softmaxCrossEntropy(target, logits);
            const l2 = tf.addN(model.trainableWeights.map((w) => tf.sum(tf.square(w.read()))));
            return ce.add(l2.mul(0.5 * WEIGHT_DECAY)) as tf.Scalar;
          }, true);
          cost?.dataSync();
        });
      }
    },
    evaluate(batches: Int32Array[]): void {
      for (const b of batches) {
        tf.tidy(() => (model.apply(input(tf.tensor1d(b, 'int32')), { training: false }) as tf.Tensor).argMax(1).dataSync());
      }
    },
    /** Share of kernel time per tfjs kernel over one call of `f` (top 4). */
    async profile(f: () => Promise<void>): Promise<{ kernel: string; share: number }[]> {
      const info = await tf.profile(f as unknown as () => tf.TensorContainer);
      const byName = new Map<string, number>();
      for (const k of info.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      const total = [...byName.values()].reduce((a, b) => a + b, 0);
      return [...byName].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([kernel, ms]) => ({ kernel, share: ms / total }));
    },
    dispose(): void {
      tf.dispose([images, y, mean, std]);
      opt.dispose();
      model.dispose();
    },
  };
}
