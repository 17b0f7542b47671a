// Training losses.
#pragma once

#include <torch/torch.h>

#include "config.h"

namespace btm {

// Soft-target cross-entropy used by every training step:
//   target = lam * q(y_a) + (1 - lam) * q(y_b),  q(y) = (1 - eps_y) onehot(y) + eps_y / C,
//   loss   = mean_i  -sum_j target_ij log_softmax(logits_i + offsets)_j
// Plain CE, mixup, label-aware smoothing, balanced softmax and logit adjustment are special cases.
torch::Tensor soft_target_loss(const torch::Tensor& logits, const torch::Tensor& ya, const torch::Tensor& yb,
                               double lam, const torch::Tensor& offsets, const torch::Tensor& smoothing);

// GML (Du & Wu 2023): q = softmax(logits + offsets) with offsets = log class counts; p_i = q_{i,y_i}
// clamped to [1e-5, 1]; m_c = mean of p_i over the batch samples of class c; loss = (mean over the
// classes present of (-log m_c)^power)^(1/power).
torch::Tensor gml_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& offsets, double power);

// The loss a LossConfig asks for, on a batch with labels `ya`, mixed with `yb` by `lam`.
// `offsets` / `smoothing` are the config's vectors on the device (undefined when empty).
torch::Tensor training_loss(const LossConfig& cfg, const torch::Tensor& logits, const torch::Tensor& ya,
                            const torch::Tensor& yb, double lam, const torch::Tensor& offsets,
                            const torch::Tensor& smoothing);

}  // namespace btm
