// Native core: models, datasets on a device, devices and threads.
export { Model, ARCHS } from './model.js';
export type {
  Arch, ModelOptions, OptimizerOptions, PerformanceOptions, TrainOptions, EvalOptions, TrainResult,
  EvalResult, ModelInfo, Trainable, Normalization, MoreTrainOptions, LowRankOptions,
} from './model.js';
export { Dataset } from './dataset.js';
export type { DatasetSource, MultiLabelSource } from './dataset.js';
export { cudaAvailable, deviceCount, setNumThreads, getNumThreads, setAdaptiveThreads, threadsAdaptive, setCudaDeterministic, buildInfo } from './device.js';
export type { Device } from './device.js';
export { doctor, formatDoctor, nodeSupported, SUPPORTED_NODE, type DoctorReport, type DoctorProblem } from './doctor.js';

// Distributed (c10d process groups: Gloo / NCCL).
export { ProcessGroup, distBackends, type ProcessGroupOptions } from './distributed/process-group.js';
export { shardEpoch, perRankBatch, type Shard } from './distributed/shard.js';

// Weights and checkpoints.
export type { StateDict, StateEntry, DType } from './state-dict.js';
export { readSafetensors, writeSafetensors } from './safetensors.js';
export { saveCheckpoint, saveState, readCheckpoint, checkpointSummary, type ModelMeta, type Checkpoint, type CheckpointSummary } from './checkpoint.js';
export { INIT_FORMATS, TIMM_VIT_NAMES, detectLayout, type InitFormat } from './checkpoint-import.js';
export { StateAccumulator, mergeFiles, adaptiveWeights, greedySoup, interpolate, interpolationSweep } from './merge.js';

// Using a trained model.
export { loadModel, evaluate, evaluateMultiLabel, predictFiveCrop, Classifier, checkCompatible, DEFAULT_MAX_BATCH } from './classifier.js';
export type { PredictOptions, Prediction, ClassifierOptions, EvaluateOptions, LoadModelOptions, MultiLabelEvaluation } from './classifier.js';
export { evaluateFiveCrop, fiveCrops, defaultTtaResize, TTA_MODES, type TtaMode } from './tta.js';

// Data.
export type { ImageSet } from './data/image-set.js';
export { loadIdxDataset, loadFashionMnist } from './data/idx.js';
export { loadCifar } from './data/cifar.js';
export { loadListDataset } from './data/list-file.js';
export { parseMultiLabelList, loadMultiLabelListDataset, multiHot, multiLabelCounts, type MultiLabelImageSet, type MultiLabelListOptions } from './data/multilabel-list.js';
export { makeMosaicSet, mosaicClassProbs, type MosaicSet, type MosaicOptions } from './data/mosaic.js';
export { gridTask } from './data/synthetic.js';
export { longTailCounts, makeLongTailSplit, formatSplitList, parseSplitList, classCounts } from './sampling/longtail.js';
export { Rng } from './sampling/rng.js';
export { uniformEpoch, classAwareEpoch, btmSubsets, groupByClass } from './sampling/samplers.js';
export { positivesByClass, multiLabelBtmSubsets, positiveCounts } from './sampling/multilabel.js';
export { classBalancedWeights, logPriorOdds } from './pipeline/losses.js';

// Metrics and reports.
export * as metrics from './metrics.js';
export { averagePrecision, summarizeMultiLabel, sigmoidScores, topHitRate, type MultiLabelSummary, type MultiLabelOptions } from './metrics-multilabel.js';
export { recallChartSvg, recallChartPng } from './report/chart.js';

// The BTM pipeline.
export { runPipeline, type RunOptions, type RunResult } from './pipeline/run.js';
export type { ProgressEvent } from './pipeline/context.js';
export type { ResultRow } from './pipeline/run-state.js';
export { parseConfig, ConfigSchema, ConfigError, type Config, type ConfigInput } from './config.js';
export { presetConfig, METHODS, SIZES, type Method, type Size } from './presets.js';
export { MoreSchema, moreCoefficient, moreCoefficients, moreClassWeights, type MoreConfig } from './more.js';
