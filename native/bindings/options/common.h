// Option pieces shared by several options objects.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "config.h"

namespace btm::options {

// `<what>.device` ('cpu' when absent): TypeError for a non-string, RangeError for a bad or unavailable device.
torch::Device device(const Napi::Object& o, const std::string& what);
// `<what>.seed`: an integer in [0, 2^53 - 1], default 0.
uint64_t seed(const Napi::Object& o, const std::string& what);
// `<what>.normalize`: {mean, std}, one number per channel each; empty when absent.
Normalize normalize(const Napi::Object& o, const std::string& what, int64_t channels);

}  // namespace btm::options
