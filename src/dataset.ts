/** A labelled image set uploaded once to a device, so training sends only sample indices. */
import type { ImageSet } from './data/image-set.js';
import type { Device } from './device.js';
import { native, type NativeDataset } from './native.js';

/** What a Dataset is made from: the pixels (uint8, NCHW), labels and shape of an ImageSet. */
export type DatasetSource = Pick<ImageSet, 'images' | 'labels' | 'n' | 'channels' | 'height' | 'width'>;

export class Dataset implements Disposable {
  /** @internal the native handle, passed to Model calls */
  readonly handle: NativeDataset;

  constructor(source: DatasetSource, device: Device = 'cpu') {
    const { images, labels, n, channels, height, width } = source;
    this.handle = new (native().Dataset)(images, labels, { n, channels, height, width, device });
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
