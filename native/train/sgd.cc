#include "train/sgd.h"

namespace btm {

void sgd_step(std::vector<ParamSlot>& slots, const OptimizerConfig& cfg, double lr) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots) {
    const auto& g = s.param.grad();
    if (!g.defined()) continue;
    auto d = cfg.weight_decay != 0 ? g.add(s.param, cfg.weight_decay) : g;
    if (cfg.momentum != 0) {
      if (!s.momentum.defined()) {
        s.momentum = d.clone();
      } else {
        s.momentum.mul_(cfg.momentum).add_(d);
      }
      d = cfg.nesterov ? d.add(s.momentum, cfg.momentum) : s.momentum;
    }
    s.param.add_(d, -lr);
  }
}

void zero_grad(std::vector<ParamSlot>& slots) {
  for (auto& slot : slots) slot.param.mutable_grad() = torch::Tensor();
}

bool LossScaler::backward(const torch::Tensor& loss, std::vector<ParamSlot>& slots) {
  if (!enabled_) {
    loss.backward();
    return true;
  }
  (loss * scale_).backward();
  torch::NoGradGuard no_grad;
  auto bad = torch::zeros({}, loss.options().dtype(torch::kFloat));
  for (auto& slot : slots) {
    if (!slot.param.grad().defined()) continue;
    slot.param.mutable_grad().mul_(1.0 / scale_);
    bad += torch::isfinite(slot.param.grad()).logical_not().sum();
  }
  if (bad.item<float>() > 0) {
    scale_ /= 2;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ % defaults::kLossScaleGrowthInterval == 0) scale_ *= 2;
  return true;
}

}  // namespace btm
