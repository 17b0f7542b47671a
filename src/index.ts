export { Model, ARCHS } from './model.js';
export type {
  Arch, ModelOptions, OptimizerOptions, PerformanceOptions, TrainOptions, EvalOptions, TrainResult,
  EvalResult, ModelInfo, Trainable, Normalization,
} from './model.js';
export { Dataset } from './dataset.js';
export type { DatasetSource } from './dataset.js';
export { cudaAvailable, deviceCount, setNumThreads, getNumThreads, buildInfo } from './device.js';
export type { Device } from './device.js';
export type { StateDict, StateEntry, DType } from './state-dict.js';
export { readSafetensors, writeSafetensors } from './safetensors.js';
export * as metrics from './metrics.js';
export type { ImageSet } from './data/image-set.js';
export { loadIdxDataset, loadFashionMnist } from './data/idx.js';
export { loadCifar } from './data/cifar.js';
