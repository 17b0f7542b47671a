// What data-parallel training needs from a process group (dist/dist_group.h), on a model's tensors:
// gradients summed before the SGD step, BatchNorm statistics averaged, the state sent from one rank.
// Tensors travel flattened in buckets (one collective per bucket, not per tensor), in the order given,
// which is the model's own order and so the same on every rank.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "distributed/dist_group.h"
#include "train/sgd.h"

namespace btm {

// In place over the ranks: t <- sum_r (scale * t_r), bucket by bucket (tensors of one dtype per bucket).
void allreduce_tensors(DistGroup& group, const std::vector<torch::Tensor>& tensors, double scale);

// In place: every rank gets `root`'s values.
void broadcast_tensors(DistGroup& group, const std::vector<torch::Tensor>& tensors, int root);

// Data-parallel gradients: g <- sum_r weight_r * g_r, where weight_r is this rank's share of the global
// batch (n_r / N), so the result is the gradient of the mean loss over the union of the ranks'
// batches. A trained parameter without a gradient on this step gets a zero one (every rank must send
// the same layout).
void sync_gradients(DistGroup& group, std::vector<ParamSlot>& slots, double weight);

}  // namespace btm
