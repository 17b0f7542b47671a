#include "train/loss.h"

#include "train/batch.h"

namespace btm {

torch::Tensor soft_target_loss(const torch::Tensor& logits, const torch::Tensor& ya, const torch::Tensor& yb,
                               double lam, const torch::Tensor& offsets, const torch::Tensor& smoothing) {
  const int64_t C = logits.size(1);
  const auto logp = torch::log_softmax(offsets.defined() ? logits + offsets : logits, 1);
  auto q = [&](const torch::Tensor& y) {
    auto onehot = torch::one_hot(y, C).to(logp.scalar_type());
    if (!smoothing.defined()) return onehot;
    auto eps = smoothing.index_select(0, y).unsqueeze(1);
    return onehot * (1 - eps) + eps / static_cast<double>(C);
  };
  const auto target = lam == 1.0 ? q(ya) : q(ya) * lam + q(yb) * (1.0 - lam);
  return -(target * logp).sum(1).mean();
}

torch::Tensor gml_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& offsets, double power) {
  const int64_t C = logits.size(1);
  const auto q = torch::softmax(offsets.defined() ? logits + offsets : logits, 1);
  const auto p = q.gather(1, y.unsqueeze(1)).squeeze(1).clamp(1e-5, 1.0);
  const auto opts = p.options();
  const auto sums = torch::zeros({C}, opts).index_add(0, y, p);
  const auto counts = torch::zeros({C}, opts).index_add(0, y, torch::ones_like(p));
  const auto present = counts > 0;
  const auto m = sums.masked_select(present) / counts.masked_select(present);
  const auto nll = -torch::log(m);
  return power == 1.0 ? nll.mean() : nll.pow(power).mean().pow(1.0 / power);
}

torch::Tensor bce_loss(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& offsets,
                       const torch::Tensor& weights) {
  const auto s = offsets.defined() ? logits + offsets : logits;
  return torch::binary_cross_entropy_with_logits(s, target.to(s.scalar_type()),
                                                 weights.defined() ? weights.unsqueeze(0) : torch::Tensor());
}

LossTensors loss_tensors(const LossConfig& cfg, const torch::Device& device) {
  return {vec_tensor(cfg.logit_offsets, device), vec_tensor(cfg.label_smoothing, device),
          vec_tensor(cfg.class_weights, device)};
}

torch::Tensor training_loss(const LossConfig& cfg, const LossTensors& t, const torch::Tensor& logits,
                            const torch::Tensor& ya, const torch::Tensor& yb, double lam, const torch::Tensor& target) {
  if (cfg.kind == LossKind::GML) return gml_loss(logits, ya, t.offsets, cfg.gml_power);
  if (cfg.kind == LossKind::BCE) {
    if (target.defined()) return bce_loss(logits, target, t.offsets, t.class_weights);
    const int64_t C = logits.size(1);
    auto onehot = [&](const torch::Tensor& y) { return torch::one_hot(y, C).to(logits.scalar_type()); };
    const auto mixed = lam == 1.0 ? onehot(ya) : onehot(ya) * lam + onehot(yb) * (1.0 - lam);
    return bce_loss(logits, mixed, t.offsets, t.class_weights);
  }
  return soft_target_loss(logits, ya, yb, lam, t.offsets, t.smoothing);
}

}  // namespace btm
