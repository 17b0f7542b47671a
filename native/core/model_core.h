// A model on a device with its optimizer and random stream, with no N-API in sight. All validation
// of user input happens in the bindings before these are called; the functions here check only
// libtorch-level invariants. Long calls (train, evaluate) run on the device's executor thread.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "distributed/dist_group.h"
#include "core/data_core.h"
#include "models/low_rank.h"
#include "models/peft.h"
#include "models/resnet.h"
#include "train/sgd.h"

namespace btm {

struct ModelCore {
  ModelCore(const ArchSpec& spec, int64_t num_classes, int64_t in_channels, int64_t image_size,
            torch::Device device, uint64_t seed);

  void set_optimizer(const OptimizerConfig& cfg);
  // True where oneDNN 3.x (libtorch 2.x) crashes on this model: a bottleneck ResNet on the CPU. Its train and
  // evaluate calls then run with oneDNN's convolutions off (core/onednn_off.h) and channels-last stays off.
  bool onednn_crashes() const;
  void set_perf(const PerfConfig& cfg);
  TrainResult train(const DataCore& data, const std::vector<int64_t>& indices, const TrainConfig& cfg);
  EvalResult evaluate(const DataCore& data, const std::vector<int64_t>* indices, const EvalConfig& cfg);
  // The live parameters and buffers, torchvision order (for loading in place).
  std::vector<std::pair<std::string, torch::Tensor>> state() { return ordered_state(*net); }
  // What the model computes, for export: as state(), but with a pending LWS scale folded into fc.
  std::vector<std::pair<std::string, torch::Tensor>> export_state();
  // Multiplies the LWS scale into fc.weight / fc.bias and drops it.
  void fold_lws();
  void drop_lws();
  // trainable 'last-block': every module outside the last residual stage and the head in eval mode, so
  // the BatchNorm running statistics there stay as they were (their weights are frozen too).
  void freeze_outside_last_stage();
  // Momentum buffers as "<param>.momentum_buffer" (only those that exist).
  std::vector<std::pair<std::string, torch::Tensor>> optimizer_state();
  void reseed(uint64_t seed);
  torch::Tensor logits(const torch::Tensor& x, torch::Tensor* features = nullptr);
  // Eval-mode logits through the BatchNorm-folded copy of a ResNet (built on first use); a ViT has no
  // BatchNorm to fold, so this is logits() there (the same function).
  torch::Tensor folded_logits(const torch::Tensor& x, torch::Tensor* features = nullptr);
  // The classifier (and LWS) on penultimate features: what logits() and folded_logits() share.
  torch::Tensor head(const torch::Tensor& f, torch::Tensor* features);
  // Drops the folded copy: call after anything that changes the weights or their layout.
  void weights_changed() { folded.reset(); }
  // MORE's low-rank factors (models/low_rank.h) on the trained convolution / linear layers under
  // `prefixes` (all when empty); they train with the model's SGD. Rank checked by the binding.
  void attach_low_rank(int64_t rank, const std::vector<std::string>& prefixes);
  // W_g += B A for good and the factors dropped: the plain architecture again.
  void merge_low_rank();
  // The general path's logits (W_g alone), leaving BatchNorm's running statistics as they were.
  torch::Tensor general_logits(const torch::Tensor& x, bool grad, torch::Tensor* features = nullptr);
  // PEFT modules (models/peft.h); checked by the binding (family, rank, bottleneck). One set per model.
  void attach_peft(const PeftConfig& cfg);
  // Bytes the model holds natively: parameters, gradients, buffers, momentum.
  int64_t native_bytes() const;

  std::shared_ptr<NetworkImpl> net;  // a ResNet or a ViT (models/network.h)
  ArchSpec spec;
  int64_t num_classes, in_channels, image_size;
  torch::Device device;
  torch::Generator gen;
  OptimizerConfig opt_cfg;
  PerfConfig perf;
  std::vector<ParamSlot> slots;  // what the optimizer trains
  torch::Tensor lws_scale;       // [C] when LWS is on, else undefined
  LossScaler scaler;             // fp16 autocast on CUDA
  std::shared_ptr<LowRank> low_rank;     // MORE's factors while a MORE stage trains, else null
  std::shared_ptr<Peft> peft;            // PEFT modules once attached, else null
  std::shared_ptr<FoldedResNet> folded;  // inference-only, BatchNorm folded; null until asked for
  std::shared_ptr<DistGroup> dist;       // data-parallel: gradients summed over its ranks each step
  bool sync_bn = defaults::kSyncBatchNorm;  // with `dist`: BatchNorm in train mode over the global batch
  std::atomic<bool> busy{false};
};

}  // namespace btm
