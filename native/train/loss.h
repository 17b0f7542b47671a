// Training losses.
#pragma once

#include <torch/torch.h>

#include "config.h"

namespace btm {

// Soft-target cross-entropy used by every single-label training step:
//   target = lam * q(y_a) + (1 - lam) * q(y_b),  q(y) = (1 - eps_y) onehot(y) + eps_y / C,
//   loss   = mean_i  -sum_j target_ij log_softmax(logits_i + offsets)_j
// Plain CE, mixup, label-aware smoothing, balanced softmax and logit adjustment are special cases.
torch::Tensor soft_target_loss(const torch::Tensor& logits, const torch::Tensor& ya, const torch::Tensor& yb,
                               double lam, const torch::Tensor& offsets, const torch::Tensor& smoothing);

// GML (Du & Wu 2023): q = softmax(logits + offsets) with offsets = log class counts; p_i = q_{i,y_i}
// clamped to [1e-5, 1]; m_c = mean of p_i over the batch samples of class c; loss = (mean over the
// classes present of (-log m_c)^power)^(1/power).
torch::Tensor gml_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& offsets, double power);

// Binary cross-entropy with logits on targets t in [0, 1] (multi-hot, or mixed by mixup):
//   loss = mean_{i,j} w_j [ softplus(s_ij) - t_ij s_ij ],   s_ij = z_ij + o_j
// (PyTorch's BCEWithLogitsLoss(weight=w), reduction 'mean': over the batch and the classes).
// Offsets o_j (undefined = 0) give logit-adjusted BCE (o_j = tau log(pi_j / (1 - pi_j)) from the
// caller); weights w_j (undefined = 1) give class-balanced BCE (Cui et al.'s effective-number weights).
torch::Tensor bce_loss(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& offsets,
                       const torch::Tensor& weights);

// A LossConfig's vectors on a device (each undefined when the config leaves it empty).
struct LossTensors {
  torch::Tensor offsets, smoothing, class_weights;
};
LossTensors loss_tensors(const LossConfig& cfg, const torch::Device& device);

// The loss a LossConfig asks for, on a batch with labels `ya`, mixed with `yb` by `lam`. BCE takes
// `target` [B, C] when defined (a multi-label batch, mixed already); else (single-label data) the
// target lam onehot(ya) + (1 - lam) onehot(yb).
torch::Tensor training_loss(const LossConfig& cfg, const LossTensors& t, const torch::Tensor& logits,
                            const torch::Tensor& ya, const torch::Tensor& yb, double lam, const torch::Tensor& target);

}  // namespace btm
