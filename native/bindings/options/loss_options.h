// The loss fields of trainEpoch's options (and of _computeLoss): loss?, logitOffsets?, labelSmoothing?, gmlPower?
#pragma once

#include <napi.h>

#include "config.h"

namespace btm::options {

LossConfig loss_options(const Napi::Object& o, const std::string& what, int64_t num_classes);

}  // namespace btm::options
