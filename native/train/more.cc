#include "train/more.h"

namespace btm {

torch::Tensor more_discrepancy(Discrepancy kind, const torch::Tensor& full, const torch::Tensor& general,
                               const torch::Tensor& ya, const torch::Tensor& yb, double lam,
                               const torch::Tensor& class_weights, const torch::Tensor& target) {
  torch::Tensor w;
  if (target.defined()) {
    w = (target * class_weights.unsqueeze(0)).sum(1) / target.sum(1);
  } else {
    w = class_weights.index_select(0, ya);
    if (lam != 1.0) w = w * lam + class_weights.index_select(0, yb) * (1.0 - lam);
  }
  torch::Tensor d;
  if (kind == Discrepancy::L2) {
    d = (full - general).pow(2).mean(1);
  } else {
    const auto lf = torch::log_softmax(full, 1), lg = torch::log_softmax(general, 1);
    d = (lf.exp() * (lf - lg)).sum(1);
  }
  return (w * d).mean();
}

}  // namespace btm
