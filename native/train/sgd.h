// SGD and the fp16 loss scaler.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "config.h"

namespace btm {

// One trained tensor with its SGD momentum buffer (undefined until the first step).
struct ParamSlot {
  std::string name;
  torch::Tensor param;
  torch::Tensor momentum;
};

// SGD exactly as torch.optim.SGD (dampening 0): d = g + wd*p; buf = d (first step) or m*buf + d;
// p -= lr * (nesterov ? d + m*buf : buf).
void sgd_step(std::vector<ParamSlot>& slots, const OptimizerConfig& cfg, double lr);

// Clears the gradients of the trained parameters.
void zero_grad(std::vector<ParamSlot>& slots);

// Backward pass with dynamic loss scaling for fp16 autocast (as torch.cuda.amp.GradScaler): the loss
// is multiplied by the scale before backward and the gradients divided after; a step whose gradients
// are not finite is skipped and the scale halves; after kLossScaleGrowthInterval good steps it doubles.
// Disabled, it is a plain backward.
class LossScaler {
 public:
  // Runs backward of `loss`, then `after` (data-parallel: the gradients' all-reduce) on the unscaled
  // gradients; returns whether the optimizer may step (false: overflow, step skipped). The overflow
  // check comes after `after`, so every rank of a group skips the same steps.
  bool backward(const torch::Tensor& loss, std::vector<ParamSlot>& slots, const std::function<void()>& after = {});
  void set_enabled(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  // Starts over from `scale` (a fresh GradScaler).
  void reset(double scale) {
    scale_ = scale;
    good_steps_ = 0;
  }

 private:
  bool enabled_ = false;
  double scale_ = defaults::kLossScale;
  int64_t good_steps_ = 0;
};

}  // namespace btm
