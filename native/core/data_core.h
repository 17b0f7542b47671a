// Images (uint8, NCHW) and their targets kept on a device for the life of a JS Dataset: one int64
// label per image (single-label), or a uint8 multi-hot row per image (multi-label).
#pragma once

#include <torch/torch.h>

namespace btm {

struct DataCore {
  torch::Tensor images;   // [N, C, H, W] uint8
  torch::Tensor labels;   // [N] int64; undefined for a multi-label set
  torch::Tensor targets;  // [N, K] uint8 multi-hot (0/1, every row holds a 1); undefined for a single-label set
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t num_targets = 0;  // K of a multi-label set, 0 for a single-label one
  int32_t max_label = -1;   // the highest label (multi-label: the highest class with a positive)
  torch::Device device{torch::kCPU};
  bool multi_label() const { return num_targets > 0; }
};

}  // namespace btm
