// BTM members trained and evaluated as ONE network: the members' ResNets stacked so that every
// convolution runs grouped over the members (weights [N*out, in/g, k, k], groups N*g), every
// BatchNorm runs over the members' channels side by side (per-channel statistics, so each member's
// are its own), and the classifier is one batched matmul ([N, K, F]). Member k's images are its own
// batch (its own sampler draw, augmentation and mixup from its own generator, exactly as BatchMaker
// gives it when the member trains alone), laid out as channels k*C..(k+1)*C-1 of the stacked input;
// its loss is computed on its own logits, and the sum of the members' losses has, for each member's
// weights, the gradient of that member's loss alone (the weights are disjoint). SGD is elementwise,
// so one sgd_step over the stacked tensors is each member's step.
//
// Why: on CUDA a resnet20 step at batch 32 is launch-bound; N members one after another pay N times the
// launches, the stacked network pays them once (measured with bench/btm_stacked_torch.py on an H100:
// 10 members 0.115x of the sequential time). On a 2-core CPU the stacked network was slower than
// sequential (oneDNN's grouped backward), so the CPU default stays members side by side on threads
// (bindings/member_group_binding.cc).
//
// Results equal the sequential members' to float tolerance, not bit for bit: a grouped convolution
// (and a batched matmul) may pick other kernels, and sum in another order, than the ungrouped one.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "core/data_core.h"
#include "train/sgd.h"

namespace btm {

struct ModelCore;
using MemberCores = std::vector<std::shared_ptr<ModelCore>>;

// Why these members cannot run stacked ("" when they can): the architecture (ResNets only), PEFT
// modules, MORE factors, LWS, a process group, fp16 loss scaling, settings that differ between members.
std::string stacked_unsupported(const MemberCores& cores);
// The same for a training call: also the index counts, learning rates and MORE terms of `cfgs`.
std::string stacked_train_unsupported(const MemberCores& cores, const std::vector<std::vector<int64_t>>& idx,
                                      const std::vector<TrainConfig>& cfgs);

// The members' weights and buffers stacked (copies: the members are untouched until write_back).
class StackedResNet {
 public:
  // `train`: the parameters the members' optimizers train get gradients, with their momentum buffers.
  StackedResNet(const MemberCores& cores, bool train);
  // x: [B, N*C, H, W] (member k's images in channels k*C..) -> logits [N, B, K].
  torch::Tensor forward(const torch::Tensor& x, bool bn_train);
  // Copies the weights, BatchNorm statistics and momentum back into the members; num_batches_tracked
  // grows by `bn_steps` (the train-mode forwards each member made).
  void write_back(int64_t bn_steps);
  std::vector<ParamSlot> slots;  // the trained stacked tensors (as the members' slots, in their order)

 private:
  torch::Tensor conv(const torch::Tensor& x, const std::string& name, const torch::nn::Conv2d& c);
  torch::Tensor bn(const torch::Tensor& x, const std::string& name, const torch::nn::BatchNorm2d& m, bool train);
  const torch::Tensor& at(const std::string& name) const;

  MemberCores cores_;
  int64_t n_;
  std::unordered_map<std::string, torch::Tensor> t_;  // stacked parameters and buffers by member name
};

// Trains member k over idx[k] with cfgs[k], all members as one stacked network (check
// stacked_train_unsupported first). One result per member, as ModelCore::train returns.
std::vector<TrainResult> train_stacked(const MemberCores& cores, const DataCore& data,
                                       const std::vector<std::vector<int64_t>>& idx, const std::vector<TrainConfig>& cfgs);

// Eval-mode logits of every member on the same images x [B, C, H, W] (already model input): [N, B, K].
torch::Tensor stacked_logits(StackedResNet& net, const torch::Tensor& x, int64_t members);

}  // namespace btm
