// CUDA autocast (AMP) for a scope: what a training step or a forward pass runs under.
#pragma once

#include <torch/torch.h>

#include "compat.h"
#include "config.h"

namespace btm {

// CUDA autocast for the scope, when asked for and on CUDA.
class AutocastScope {
 public:
  AutocastScope(Amp amp, const torch::Device& device) : on_(amp != Amp::None && device.is_cuda()) {
    if (on_) compat::set_cuda_autocast(true, amp == Amp::BF16 ? at::kBFloat16 : at::kHalf);
  }
  ~AutocastScope() {
    if (on_) compat::set_cuda_autocast(false);
  }

 private:
  bool on_;
};

}  // namespace btm
