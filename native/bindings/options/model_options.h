// new Model({arch, numClasses, inChannels?, imageSize?, device?, seed?}); imageSize resolves to the
// architecture's default (224 for vit_b_16, 0 = any for ResNets) when not given.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include "models/resnet.h"

namespace btm::options {

struct ModelOptions {
  ArchSpec spec;
  int64_t num_classes = 0, in_channels = 0, image_size = 0;
  torch::Device device{torch::kCPU};
  uint64_t seed = 0;
};

ModelOptions model_options(const Napi::Value& v, const std::string& what);

}  // namespace btm::options
