// Per-step loss and batch accuracy of a training call, kept on the device until the call ends.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config.h"
#include "train/batch.h"

namespace btm {

class StepLog {
 public:
  explicit StepLog(int64_t steps) {
    losses_.reserve(steps);
    accs_.reserve(steps);
  }
  void record(const torch::Tensor& loss, const torch::Tensor& logits, const Batch& b) {
    torch::NoGradGuard no_grad;
    const auto pred = logits.argmax(1);
    torch::Tensor acc;
    if (b.t.defined()) {  // multi-label: the (mixed) target of the top class, as below for one label
      acc = b.t.gather(1, pred.unsqueeze(1)).mean();
    } else {
      acc = pred.eq(b.y).to(torch::kFloat).mean() * b.lam;
      if (b.lam != 1.0) acc = acc + pred.eq(b.y_mix).to(torch::kFloat).mean() * (1.0 - b.lam);
    }
    losses_.push_back(loss.detach());
    accs_.push_back(acc);
  }
  TrainResult result(int64_t samples) const {
    TrainResult r;
    r.steps = static_cast<int64_t>(losses_.size());
    r.samples = samples;
    if (r.steps > 0) {
      const auto l = torch::stack(losses_).to(torch::kCPU).contiguous();
      const auto a = torch::stack(accs_).to(torch::kCPU).contiguous();
      r.losses.assign(l.data_ptr<float>(), l.data_ptr<float>() + r.steps);
      r.accs.assign(a.data_ptr<float>(), a.data_ptr<float>() + r.steps);
    }
    return r;
  }

 private:
  std::vector<torch::Tensor> losses_, accs_;
};

}  // namespace btm
