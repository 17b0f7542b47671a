/** A labelled image set uploaded once to a device, so training sends only sample indices. */
import type { ImageSet } from './data/image-set.js';
import type { Device } from './device.js';
import { native, type NativeDataset } from './native.js';

/** What a Dataset is made from: the pixels (uint8, NCHW), labels and shape of an ImageSet. */
export type DatasetSource = Pick<ImageSet, 'images' | 'labels' | 'n' | 'channels' | 'height' | 'width'>;

/**
 * A multi-label set: the pixels and shape, and multi-hot `targets` (row-major [n, numClasses], each
 * entry 0 or 1, every row with at least one 1; `multiHot` in src/data/multilabel-list.ts makes them
 * from label sets). Such a Dataset trains with loss 'bce'.
 */
export interface MultiLabelSource {
  images: Uint8Array;
  targets: Uint8Array;
  numClasses: number;
  n: number;
  channels: number;
  height: number;
  width: number;
}

export class Dataset implements Disposable {
  /** @internal the native handle, passed to Model calls */
  readonly handle: NativeDataset;

  constructor(source: DatasetSource | MultiLabelSource, device: Device = 'cpu') {
    const { images, n, channels, height, width } = source;
    if ('targets' in source && source.targets !== undefined) {
      this.handle = new (native().Dataset)(images, source.targets, { n, channels, height, width, numClasses: source.numClasses, device });
    } else {
      this.handle = new (native().Dataset)(images, (source as DatasetSource).labels, { n, channels, height, width, device });
    }
  }

  /** Upload an ImageSet from one of the readers (src/data). */
  static fromImageSet(set: ImageSet, device: Device = 'cpu'): Dataset {
    return new Dataset(set, device);
  }

  get size(): number {
    return this.handle.size;
  }
  /** [n, channels, height, width] */
  get shape(): [number, number, number, number] {
    return this.handle.shape;
  }
  /** The multi-hot width of a multi-label set (its number of classes); 0 for a single-label set. */
  get numTargets(): number {
    return this.handle.numTargets;
  }
  get multiLabel(): boolean {
    return this.handle.numTargets > 0;
  }
  get device(): string {
    return this.handle.device;
  }
  get disposed(): boolean {
    return this.handle.disposed;
  }

  /** Frees the images on the device now (a running call that uses them keeps them until it ends). */
  dispose(): void {
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
