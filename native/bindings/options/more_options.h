// MORE's options (model rebalancing):
//   Model.setLowRank({rank, layers?})  -> the low-rank factors to attach;
//   trainEpoch's `more: {coefficient, classWeights, discrepancy?, generalGrad?}` -> the rebalancing term.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "config.h"
#include "core/model_core.h"

namespace btm::options {

struct LowRankOptions {
  int64_t rank = 0;
  std::vector<std::string> layers;  // module path prefixes; empty = every trained conv / linear layer
};

// Checks the rank against every layer it would modify (a RangeError names the layer and its limit)
// and that some trained layer matches.
LowRankOptions low_rank_options(const Napi::Value& v, const std::string& what, ModelCore& m);

// `<what>.more`, for a call of `steps` steps on `num_classes` classes; off (empty coefficients) when absent.
MoreConfig more_options(const Napi::Object& o, const std::string& what, int64_t steps, int64_t num_classes);

}  // namespace btm::options
