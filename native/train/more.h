// MORE's rebalancing term (model rebalancing, Luo et al. 2025): the class-prior-weighted discrepancy
// between the full path's logits (W_g + B A) and the general path's (W_g alone),
//   L_MORE = mean_i w_i d(z_full_i, z_general_i),   w_i = lam w_{ya_i} + (1 - lam) w_{yb_i},
//   d = l2:  mean_j (z_full_ij - z_general_ij)^2                 (squared l2, averaged over classes)
//   d = kl:  sum_j p_full_ij (log p_full_ij - log p_general_ij)   (KL(softmax z_full || softmax z_general))
// with w_y = C * prior_y from the caller; the step's loss is base(z_full) + coefficient(t) * L_MORE.
// On a multi-label batch (`target` [B, C] defined, mixed by mixup already) a sample's weight is the
// mean of its labels' class weights, weighted by the target: w_i = sum_j t_ij w_j / sum_j t_ij (for a
// one-hot target mixed by lam this is the single-label weight above).
#pragma once

#include <torch/torch.h>

#include "config.h"

namespace btm {

torch::Tensor more_discrepancy(Discrepancy kind, const torch::Tensor& full, const torch::Tensor& general,
                               const torch::Tensor& ya, const torch::Tensor& yb, double lam,
                               const torch::Tensor& class_weights, const torch::Tensor& target = torch::Tensor());

}  // namespace btm
