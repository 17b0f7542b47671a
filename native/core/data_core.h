// Images (uint8, NCHW) and labels (int64) kept on a device for the life of a JS Dataset.
#pragma once

#include <torch/torch.h>

namespace btm {

struct DataCore {
  torch::Tensor images;  // [N, C, H, W] uint8
  torch::Tensor labels;  // [N] int64
  int64_t n = 0, c = 0, h = 0, w = 0;
  int32_t max_label = -1;
  torch::Device device{torch::kCPU};
};

}  // namespace btm
