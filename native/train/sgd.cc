#include "train/sgd.h"

namespace btm {

void sgd_step(std::vector<ParamSlot>& slots, const OptimizerConfig& cfg, double lr) {
  torch::NoGradGuard no_grad;
  // Multi-tensor ("foreach") ops, as torch.optim.SGD(foreach=True): the same arithmetic per element
  // as a loop over the parameters, in a few fused launches on CUDA instead of ~4 per parameter (the CPU
  // runs them tensor by tensor).
  std::vector<ParamSlot*> live;
  std::vector<torch::Tensor> params, grads;
  for (auto& s : slots) {
    if (!s.param.grad().defined()) continue;
    live.push_back(&s);
    params.push_back(s.param);
    grads.push_back(s.param.grad());
  }
  if (live.empty()) return;
  std::vector<torch::Tensor> d = cfg.weight_decay != 0 ? at::_foreach_add(grads, params, cfg.weight_decay) : grads;
  if (cfg.momentum != 0) {
    bool all_have_buffers = true;
    for (auto* s : live) all_have_buffers = all_have_buffers && s->momentum.defined();
    std::vector<torch::Tensor> bufs;
    bufs.reserve(live.size());
    if (all_have_buffers) {
      for (auto* s : live) bufs.push_back(s->momentum);
      at::_foreach_mul_(bufs, cfg.momentum);
      at::_foreach_add_(bufs, d);
    } else {  // a first step for some: their buffer starts as d
      for (size_t i = 0; i < live.size(); ++i) {
        auto& m = live[i]->momentum;
        if (!m.defined()) m = d[i].clone();
        else m.mul_(cfg.momentum).add_(d[i]);
        bufs.push_back(m);
      }
    }
    d = cfg.nesterov ? at::_foreach_add(d, bufs, cfg.momentum) : bufs;
  }
  at::_foreach_add_(params, d, -lr);
}

void zero_grad(std::vector<ParamSlot>& slots) {
  for (auto& slot : slots) slot.param.mutable_grad() = torch::Tensor();
}

bool LossScaler::backward(const torch::Tensor& loss, std::vector<ParamSlot>& slots, const std::function<void()>& after) {
  if (!enabled_) {
    loss.backward();
    if (after) after();
    return true;
  }
  (loss * scale_).backward();
  torch::NoGradGuard no_grad;
  for (auto& slot : slots)
    if (slot.param.grad().defined()) slot.param.mutable_grad().mul_(1.0 / scale_);
  if (after) after();
  auto bad = torch::zeros({}, loss.options().dtype(torch::kFloat));
  for (auto& slot : slots)
    if (slot.param.grad().defined()) bad += torch::isfinite(slot.param.grad()).logical_not().sum();
  if (bad.item<float>() > 0) {
    scale_ /= 2;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ % defaults::kLossScaleGrowthInterval == 0) scale_ *= 2;
  return true;
}

}  // namespace btm
