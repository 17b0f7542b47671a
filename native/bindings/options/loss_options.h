// The loss fields of trainEpoch's options (and of _computeLoss): loss?, logitOffsets?, labelSmoothing?,
// classWeights?, gmlPower?; and whether a loss fits a dataset (multi-label sets train with 'bce').
#pragma once

#include <napi.h>

#include "config.h"
#include "core/data_core.h"

namespace btm::options {

LossConfig loss_options(const Napi::Object& o, const std::string& what, int64_t num_classes);

// A multi-label dataset needs loss 'bce' and one target per class of the model; throws naming them.
void check_loss_data(const Napi::Env& env, const std::string& what, const LossConfig& loss, const DataCore& data,
                     int64_t num_classes);

}  // namespace btm::options
