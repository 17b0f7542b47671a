// Model.setPeft({modules, rank?, bottleneck?, head?, cosineScale?}) -> PeftConfig (models/peft.h),
// checked against the model: every module exists for its architecture family, the LoRA rank fits the
// attention's width, AdaptFormer's bottleneck is positive (default 2^max(0, floor(log2(C / (2 L))))
// for C classes and L blocks, as LIFT).
#pragma once

#include <napi.h>

#include <string>

#include "core/model_core.h"

namespace btm::options {

PeftConfig peft_options(const Napi::Value& v, const std::string& what, const ModelCore& m);

}  // namespace btm::options
