// Model.evaluate's options: {batchSize?, normalize?, logits?, features?, bnMode?, foldBatchNorm?}
#pragma once

#include <napi.h>

#include "config.h"

namespace btm::options {

// For `n` samples of a model with `in_channels` channels.
EvalConfig eval_options(const Napi::Value& v, const std::string& what, int64_t n, int64_t in_channels);

}  // namespace btm::options
