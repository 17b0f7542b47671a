// The options of the native calls as plain C++ structs (no N-API): each is filled by its parser in
// bindings/options and read by the code that does the work. Defaults come from defaults.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "defaults.h"

namespace btm {

// Peft: the head and what the attached PEFT modules choose (models/peft.h); LastBlock: the last residual
// stage and the head (the official BTM Places-LT recipe), the BatchNorm statistics before it frozen
enum class Trainable { All, Classifier, Backbone, Peft, LastBlock };
enum class Amp { None, BF16, FP16 };
enum class LossKind { SoftTargetCE, GML, BCE };

struct OptimizerConfig {
  double momentum = defaults::kMomentum;
  double weight_decay = defaults::kWeightDecay;
  bool nesterov = defaults::kNesterov;
  Trainable trainable = Trainable::All;
  bool lws = false;  // learnable per-class logit scale (MiSLAS LWS), trained with the chosen parameters
};

struct PerfConfig {
  Amp amp = Amp::None;         // CUDA only
  bool channels_last = false;  // NHWC weights and batches (oneDNN on CPU, cuDNN on CUDA)
  bool cudnn_benchmark = false;  // CUDA only
  double loss_scale = defaults::kLossScale;  // fp16: the loss scaler's initial scale
};

struct Normalize {
  std::vector<float> mean, std;  // per channel, on the [0,1] scale; empty = no normalisation
};

struct LossConfig {
  LossKind kind = LossKind::SoftTargetCE;
  std::vector<float> logit_offsets;    // [C] added to the logits in the loss only; empty = none
  std::vector<float> label_smoothing;  // [C] eps_y per class; empty = none (soft-target CE only)
  std::vector<float> class_weights;    // [C] w_j on class j's BCE terms; empty = all 1 (BCE only)
  double gml_power = defaults::kGmlPower;
};

// MORE's rebalancing term for one trainEpoch call (train/more.h); off when `coefficients` is empty.
enum class Discrepancy { L2, KL };
struct MoreConfig {
  std::vector<float> coefficients;   // [steps] the schedule's coefficient at each step of this call
  std::vector<float> class_weights;  // [C] w_y (C * class prior)
  Discrepancy discrepancy = Discrepancy::L2;
  bool general_grad = true;  // gradients flow through the general path too
  bool on() const { return !coefficients.empty(); }
};

struct TrainConfig {
  int64_t batch_size = defaults::kTrainBatch;
  bool drop_last = false;
  std::vector<float> lrs;  // one per step
  int64_t crop_padding = 0;
  bool hflip = false;
  Normalize normalize;
  double mixup_alpha = 0.0;
  LossConfig loss;
  bool bn_train = true;  // BatchNorm in train mode (statistics update) or eval mode
  MoreConfig more;
  // With a process group (data-parallel): this rank's share n_r / N of each step's global batch, which
  // weights its gradients in the sum over the ranks; empty = 1 / world size for every step.
  std::vector<float> grad_weights;
  // Global batches (trainEpoch's globalBatch, with a process group): `indices` are the global order,
  // batch_size the global batch, and this rank trains part `part` of `parts` of each (train/batch.h),
  // its gradients weighted by its share of the batch. parts = 1: the whole batch (a plain call).
  int64_t part = 0, parts = 1;
};

struct EvalConfig {
  int64_t batch_size = defaults::kEvalBatch;
  Normalize normalize;
  bool want_logits = false, want_features = false;
  bool bn_train = false;  // a train-mode forward (no gradients) updates BatchNorm statistics
  bool fold_bn = false;   // eval mode through the BatchNorm-folded network (same function, faster)
  bool general_path = false;  // with low-rank factors: the general path W_g alone (default: W_g + B A)
};

struct TrainResult {
  std::vector<float> losses, accs;
  int64_t steps = 0, samples = 0;
  int64_t skipped_steps = 0;  // steps the fp16 loss scaler skipped (gradients not finite)
  double loss_scale = 0;      // the fp16 loss scale after the call; 0 when loss scaling is off
};

struct EvalResult {
  std::vector<int32_t> preds;
  std::vector<float> logits, features;
  int64_t num_classes = 0, feature_dim = 0;
};

}  // namespace btm
