// Parameter-efficient fine-tuning (LIFT, Shi et al. 2024) on a ResNet or ViT: which of the trunk's
// parameters train, and the modules added to it. Only the chosen modules and the head train (the
// caller's optimizer uses `trains_base` and `parameters`); the rest of the trunk is frozen.
//
//   bitfit       every bias of the trunk (BatchNorm / LayerNorm beta included) trains;
//   norm         BatchNorm / LayerNorm weight and bias train (and BatchNorm's running statistics: a
//                ResNet trains in train mode); without it a frozen BatchNorm stays in eval mode;
//   lora         ViT: W_qkv + [B_q A_q; 0; B_v A_v] / r on each block's in_proj_weight (A kaiming-
//                uniform, B = 0: an exact no-op at the start);
//   ssf          per-channel scale s and shift t after each op (s = 1, t = 0 at the start): ViT after
//                conv_proj, ln_1, in_proj, out_proj, ln_2, mlp.0, mlp.3 and encoder.ln; ResNet after every
//                BatchNorm. Each folds into the op's weight (W s) and bias (b s + t);
//   adaptformer  ViT: an AdaptFormer (models/adapters.h) beside each block's MLP;
//   adapter      ResNet: a residual 1x1 adapter after each block.
//
// LoRA and SSF are not registered in the network: like MORE's factors (models/low_rank.h), the
// modified layers compute with effective tensors swapped into their members for the scope of a forward
// (Scope), export writes the effective values (merged: the torchvision layout), and a loaded state
// resets them to the no-op (the model then computes the loaded weights). AdaptFormer and the adapters
// are registered submodules: their parameters appear in the state dict under `.adaptformer.` /
// `.adapter.` and load back into a model that has them attached.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/network.h"

namespace btm {

enum PeftModule : unsigned {
  kPeftBitFit = 1,
  kPeftNorm = 2,
  kPeftLoRA = 4,
  kPeftSSF = 8,
  kPeftAdaptFormer = 16,
  kPeftAdapter = 32,
};

struct PeftConfig {
  unsigned modules = 0;    // PeftModule bits
  int64_t rank = 8;        // LoRA rank
  int64_t bottleneck = 0;  // AdaptFormer width; resolved by the binding (> 0)
  double cosine_scale = 0;  // > 0: a cosine classifier head with this scale (ModelCore::head)
};

// The module names, in PeftModule bit order ("bitfit", "norm", "lora", "ssf", "adaptformer", "adapter").
const std::vector<std::string>& peft_module_names();
// The modules an architecture family supports (bits).
unsigned peft_modules_for(Family family);

class Peft {
 public:
  // Attaches the modules to `net` (the caller has checked them against the family and the rank
  // against the dimensions); random draws from `gen`.
  Peft(NetworkImpl& net, Family family, const PeftConfig& cfg, torch::Generator& gen);

  const PeftConfig& config() const { return cfg_; }
  bool tunes_norm() const { return cfg_.modules & kPeftNorm; }
  // Whether the network's parameter `name` trains (the head is the caller's business).
  bool trains_base(const std::string& name) const;
  // The tensors LoRA and SSF add (not in the network), named "<param>.lora_A_q" / "<op>.ssf_scale"...
  std::vector<std::pair<std::string, torch::Tensor>> parameters() const;
  // Whether a trained tensor's name is one of those.
  static bool is_extra(const std::string& name);
  // The effective value of the network's parameter `name` (as in a state dict), else `t`.
  torch::Tensor effective(const std::string& name, const torch::Tensor& t) const;
  // LoRA B = 0 and SSF s = 1, t = 0, gradients dropped: the model computes its base weights.
  void reset();
  int64_t bytes() const;

  // Scope: the modified layers compute with their effective tensors.
  class Scope {
   public:
    explicit Scope(const Peft* p);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const Peft* p_;
  };

 private:
  // One modified parameter: the member the layer's forward reads, the registered tensor, and what
  // modifies it.
  struct Target {
    std::string name;       // state-dict name
    torch::Tensor* member;  // e.g. &linear->weight
    torch::Tensor base;     // the registered parameter
    torch::Tensor lora_aq, lora_bq, lora_av, lora_bv;  // in_proj_weight only
    torch::Tensor scale, shift;  // SSF: weight *= scale (along dim 0); bias = bias * scale + shift
    torch::Tensor value() const;
  };
  void add_ssf(const std::string& op, torch::Tensor* weight, torch::Tensor* bias, int64_t channels);
  Target& target(const std::string& name, torch::Tensor* member);

  PeftConfig cfg_;
  std::vector<std::string> trained_;  // base parameter names that train
  std::vector<Target> targets_;
  std::vector<std::pair<std::string, torch::Tensor>> extras_;
};

}  // namespace btm
