// Model.trainEpoch's options: {lr, batchSize?, dropLast?, cropPadding?, hflip?, normalize?, mixupAlpha?,
// loss?, logitOffsets?, labelSmoothing?, gmlPower?, bnMode?, more?}
#pragma once

#include <napi.h>

#include "core/config.h"
#include "core/data_core.h"

namespace btm::options {

// `n` indices of `data`, for a model of `num_classes` classes and `in_channels` channels.
TrainConfig train_options(const Napi::Value& v, const std::string& what, const DataCore& data, int64_t n,
                          int64_t num_classes, int64_t in_channels);

// BatchNorm in train mode needs 2+ samples per batch: refuse a batch of one before any step runs.
void check_batches(const Napi::Env& env, const std::string& what, int64_t n, int64_t bs, bool drop_last);

}  // namespace btm::options
