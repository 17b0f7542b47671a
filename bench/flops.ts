/**
 * Analytic FLOPs of the CIFAR ResNets (native/resnet.cc): 3x3 stem of 16 channels, three stages of
 * 16/32/64 BasicBlocks (stride 2 at the first block of stages 2 and 3), option-A shortcuts (no
 * parameters, no multiplies), global average pool, fc.
 *
 * Convention: 1 multiply-add = 2 FLOPs; only convolutions and the fc layer are counted (BatchNorm,
 * ReLU, the residual add and the pool are elementwise and left out, < 1% of the total). A train step is
 * taken as 3x the forward (forward + gradient w.r.t. inputs + gradient w.r.t. weights).
 */
const CIFAR_DEPTHS: Record<string, number> = { resnet8: 1, resnet20: 3, resnet32: 5, resnet56: 9, resnet110: 18 };

function convMacs(cin: number, cout: number, k: number, hOut: number, wOut: number): number {
  return cin * cout * k * k * hOut * wOut;
}

/** Forward FLOPs of one image of `channels` x `size` x `size` through a CIFAR ResNet. */
export function cifarForwardFlops(arch: string, channels: number, size: number, numClasses: number): number {
  const blocks = CIFAR_DEPTHS[arch];
  if (blocks === undefined) throw new RangeError(`flops: '${arch}' is not a CIFAR ResNet (${Object.keys(CIFAR_DEPTHS).join(', ')})`);
  let h = size, w = size, cin = 16;
  let macs = convMacs(channels, 16, 3, h, w);
  [16, 32, 64].forEach((planes, stage) => {
    for (let b = 0; b < blocks; b++) {
      if (stage > 0 && b === 0) {
        h = Math.ceil(h / 2); // 3x3, padding 1, stride 2
        w = Math.ceil(w / 2);
      }
      macs += convMacs(cin, planes, 3, h, w) + convMacs(planes, planes, 3, h, w);
      cin = planes;
    }
  });
  macs += 64 * numClasses;
  return 2 * macs;
}

/** Train step FLOPs per image (forward + backward ~= 3x forward). */
export function cifarTrainFlops(arch: string, channels: number, size: number, numClasses: number): number {
  return 3 * cifarForwardFlops(arch, channels, size, numClasses);
}
