// The native objects behind the JS handles, with no N-API in sight: a model on a device with its
// optimizer and random stream, and a dataset kept on the device. All validation of user input happens
// in the bindings before these are called; the functions here check only libtorch-level invariants.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "resnet.h"

namespace btm {

// Images (uint8, NCHW) and labels (int64) kept on the device for the life of the handle.
struct DataCore {
  torch::Tensor images;  // [N, C, H, W] uint8
  torch::Tensor labels;  // [N] int64
  int64_t n = 0, c = 0, h = 0, w = 0;
  int32_t max_label = -1;
  torch::Device device{torch::kCPU};
};

enum class Trainable { All, Classifier, Backbone };
enum class Amp { None, BF16, FP16 };

struct OptimizerConfig {
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = false;
  Trainable trainable = Trainable::All;
  bool lws = false;  // learnable per-class logit scale (MiSLAS LWS), trained with the chosen parameters
};

// One trained tensor with its SGD momentum buffer (undefined until the first step).
struct ParamSlot {
  std::string name;
  torch::Tensor param;
  torch::Tensor momentum;
};

struct PerfConfig {
  Amp amp = Amp::None;
  bool channels_last = false;
  bool cudnn_benchmark = false;
};

struct Normalize {
  std::vector<float> mean, std;  // per channel, on the [0,1] scale; empty = no normalisation
};

enum class LossKind { SoftTargetCE, GML };

struct LossConfig {
  LossKind kind = LossKind::SoftTargetCE;
  std::vector<float> logit_offsets;    // [C] added to the logits in the loss only; empty = none
  std::vector<float> label_smoothing;  // [C] eps_y per class; empty = none (soft-target CE only)
  double gml_power = 1.0;              // GML's p
};

struct TrainConfig {
  int64_t batch_size = 128;
  bool drop_last = false;
  std::vector<float> lrs;  // one per step; fewer steps than batches is an error caught by the binding
  int64_t crop_padding = 0;
  bool hflip = false;
  Normalize normalize;
  double mixup_alpha = 0.0;
  LossConfig loss;
  bool bn_train = true;  // BatchNorm in train mode (statistics update) or eval mode
};

struct TrainResult {
  std::vector<float> losses, accs;
  int64_t steps = 0, samples = 0;
};

struct EvalConfig {
  int64_t batch_size = 256;
  Normalize normalize;
  bool want_logits = false, want_features = false;
  bool bn_train = false;  // a train-mode forward (no gradients) updates BatchNorm statistics
};

struct EvalResult {
  std::vector<int32_t> preds;
  std::vector<float> logits, features;
  int64_t num_classes = 0, feature_dim = 0;
};

struct ModelCore {
  ModelCore(const ArchSpec& spec, int64_t num_classes, int64_t in_channels, int64_t image_size,
            torch::Device device, uint64_t seed);

  void set_optimizer(const OptimizerConfig& cfg);
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
  // Momentum buffers as "<param>.momentum_buffer" (only those that exist).
  std::vector<std::pair<std::string, torch::Tensor>> optimizer_state();
  void reseed(uint64_t seed);
  torch::Tensor logits(const torch::Tensor& x, torch::Tensor* features = nullptr);

  ResNet net;
  ArchSpec spec;
  int64_t num_classes, in_channels, image_size;
  torch::Device device;
  torch::Generator gen;
  OptimizerConfig opt_cfg;
  PerfConfig perf;
  std::vector<ParamSlot> slots;  // what the optimizer trains
  torch::Tensor lws_scale;       // [C] when LWS is on, else undefined
  double loss_scale = 65536.0;  // dynamic loss scale for fp16 autocast (CUDA only)
  int64_t good_steps = 0;
  std::atomic<bool> busy{false};
};

// SGD exactly as torch.optim.SGD (dampening 0): d = g + wd*p; buf = d (first step) or m*buf + d;
// p -= lr * (nesterov ? d + m*buf : buf).
void sgd_step(std::vector<ParamSlot>& slots, const OptimizerConfig& cfg, double lr);

// GML (Du & Wu 2023): q = softmax(logits + offsets) with offsets = log class counts; p_i = q_{i,y_i}
// clamped to [1e-5, 1]; m_c = mean of p_i over the batch samples of class c; loss = (mean over the
// classes present of (-log m_c)^power)^(1/power).
torch::Tensor gml_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& offsets, double power);

// Soft-target cross-entropy used by every training step:
//   target = lam * q(y_a) + (1 - lam) * q(y_b),  q(y) = (1 - eps_y) onehot(y) + eps_y / C,
//   loss   = mean_i  -sum_j target_ij log_softmax(logits_i + offsets)_j
// Plain CE, mixup, label-aware smoothing, balanced softmax and logit adjustment are special cases.
torch::Tensor soft_target_loss(const torch::Tensor& logits, const torch::Tensor& ya, const torch::Tensor& yb,
                               double lam, const torch::Tensor& offsets, const torch::Tensor& smoothing);

// Global settings.
void set_threads(int n);
int threads();
void apply_threads();  // call at the start of work on a pool thread

// Device helpers.
bool parse_device(const std::string& s, torch::Device* out, std::string* err);

}  // namespace btm
