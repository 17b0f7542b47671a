// Model.setOptimizer({momentum?, weightDecay?, nesterov?, trainable?, lws?}); trainable 'peft' (the head
// and what setPeft chose) needs PEFT modules attached (checked by the binding).
#pragma once

#include <napi.h>

#include "config.h"

namespace btm::options {

OptimizerConfig optimizer_options(const Napi::Value& v, const std::string& what);

}  // namespace btm::options
