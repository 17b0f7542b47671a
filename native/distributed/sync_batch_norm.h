// SyncBatchNorm for data-parallel training (as torch.nn.SyncBatchNorm): while a SyncBatchNormScope
// is open on a thread, the BatchNorm layers of a model that train (train mode) normalise with the
// mean and variance of the GLOBAL batch, the union of the ranks' parts, instead of their own part's.
//
// Forward: one all-reduce per layer of the per-channel sums n*mean and n*(var + mean^2) and the
// count (float64 on the wire, from each rank's own mean and variance, so the combination loses no
// precision). The running statistics are updated from the global mean and the unbiased global
// variance, so every rank holds identical buffers. Backward: one all-reduce per layer of the
// per-channel sums of dy and dy * (x - mean), each rank's weighted by its share of the global batch
// (the weight its gradients get in the gradient all-reduce), which gives the gradient of the mean
// loss over the global batch; BatchNorm's own weight and bias get their local sums (summed by the
// gradient all-reduce as every other parameter). Collectives run in the same order on every rank: the
// layers in forward order, then in the autograd engine's (deterministic) backward order. A group of
// one rank never opens a scope: plain BatchNorm, bit for bit.
#pragma once

#include <torch/torch.h>

#include "distributed/dist_group.h"

namespace btm {

class SyncBatchNormScope {
 public:
  // null group: no scope (BatchNorm stays per rank)
  explicit SyncBatchNormScope(DistGroup* group);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;
  // This rank's share n_r / N of the current step's global batch (its gradient weight), > 0.
  void set_share(double share) { share_ = share; }

  // The scope open on this thread, or null.
  static SyncBatchNormScope* current();
  DistGroup* group() const { return group_; }
  double share() const { return share_; }

 private:
  DistGroup* group_;
  double share_ = 1.0;
  SyncBatchNormScope* prev_;
};

// A BatchNorm layer's forward: synchronised over the open scope's group when the layer trains, else
// the layer's own forward (every BatchNorm of the ResNets goes through here).
torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

}  // namespace btm
