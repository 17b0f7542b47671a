// The one home of the native defaults and bounds. The option parsers (bindings/options) read them,
// `_defaults()` exposes them to the tests, and a test checks that src/config.ts agrees (its defaults
// equal these and its ranges lie inside these).
#pragma once

#include <cstdint>

namespace btm::defaults {

// Model
constexpr int64_t kInChannels = 3;
constexpr int64_t kMaxInChannels = 4096;
constexpr int64_t kMaxClasses = int64_t(1) << 20;
constexpr int64_t kMaxImageSize = 65536;
constexpr double kMaxSeed = 9007199254740991.0;  // 2^53 - 1: every seed a JS number holds exactly
constexpr int64_t kMaxThreads = 1024;

// Optimizer (SGD as torch.optim.SGD)
constexpr double kMomentum = 0.9, kMaxMomentum = 1.0;
constexpr double kWeightDecay = 5e-4, kMaxWeightDecay = 1e3;
constexpr bool kNesterov = false;

// Training
constexpr int64_t kTrainBatch = 128;
constexpr int64_t kMaxBatch = int64_t(1) << 20;
constexpr double kMaxLr = 1e3;
constexpr double kMaxMixupAlpha = 1e3;
constexpr double kGmlPower = 1.0, kMinGmlPower = 0.1, kMaxGmlPower = 10.0;
constexpr double kMaxLogitOffset = 1e4;  // |offset| bound (log priors times tau)
constexpr double kMaxLabelSmoothing = 1.0;
constexpr double kMaxClassWeight = 1e6;  // BCE's per-class weights (class-balanced: Cui et al.)

// MORE (bindings/options/more_options): bounds of the schedule's coefficient and the class weights
constexpr double kMaxMoreCoefficient = 1e4;
constexpr double kMaxMoreClassWeight = 1e6;

// Evaluation
constexpr int64_t kEvalBatch = 256;

// fp16 loss scaling (CUDA autocast): initial scale, growth after this many good steps.
constexpr double kLossScale = 65536.0;
constexpr int64_t kLossScaleGrowthInterval = 2000;

// Distributed (c10d): ranks in a group; how long a rendezvous or a collective waits for the others
// (PyTorch's default is 30 minutes; a rank that dies is seen at once, a hung one after this).
constexpr int64_t kMaxWorldSize = 65536;
constexpr int64_t kDistTimeoutMs = 30 * 60 * 1000;
constexpr int64_t kMaxDistTimeoutMs = int64_t(7) * 24 * 3600 * 1000;
// Data-parallel BatchNorm in train mode: over the global batch (SyncBatchNorm) or per rank's part.
constexpr bool kSyncBatchNorm = true;

}  // namespace btm::defaults
