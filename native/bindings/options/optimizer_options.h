// Model.setOptimizer({momentum?, weightDecay?, nesterov?, trainable?, lws?})
#pragma once

#include <napi.h>

#include "config.h"

namespace btm::options {

OptimizerConfig optimizer_options(const Napi::Value& v, const std::string& what);

}  // namespace btm::options
