// Model.trainEpoch's options: {lr, batchSize?, dropLast?, cropPadding?, hflip?, normalize?, mixupAlpha?,
// loss?, logitOffsets?, labelSmoothing?, gmlPower?, bnMode?, more?, gradWeights?, globalBatch?}
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "config.h"
#include "core/data_core.h"

namespace btm::options {

// The model's process group as trainEpoch's options see it (world 0: none).
struct GroupInfo {
  int64_t rank = 0, world = 0;
  bool sync_bn = false;
};

// `n` indices of `data`, for a model of `num_classes` classes and `in_channels` channels, in `group`.
TrainConfig train_options(const Napi::Value& v, const std::string& what, const DataCore& data, int64_t n,
                          int64_t num_classes, int64_t in_channels, const GroupInfo& group = {});

// The pieces, for callers that train several models with one options object (trainMembers):
// the accepted keys; every option but lr (no lrs, no last-batch check); the steps of `n` indices;
// lr as one number for every step or one per step (`o.lr`).
const std::vector<std::string>& train_option_keys();
TrainConfig train_shared_options(const Napi::Object& o, const std::string& what, const DataCore& data,
                                 int64_t num_classes, int64_t in_channels);
int64_t train_steps(const TrainConfig& cfg, int64_t n);
std::vector<float> lr_options(const Napi::Object& o, const std::string& what, int64_t steps);

// BatchNorm in train mode needs 2+ samples per batch: refuse a batch of one before any step runs.
void check_batches(const Napi::Env& env, const std::string& what, int64_t n, int64_t bs, bool drop_last);

}  // namespace btm::options
