// Low-rank components for MORE (model rebalancing, Luo et al. 2025): a chosen convolution or linear
// layer with weight W_g [out, ...] computes with W = W_g + reshape(B A), B [out, r] zero-initialised
// and A [r, fan] (fan = in/groups * kh * kw for a convolution, in for a linear layer), so training
// starts from the plain model. The factors live here, beside the layers they modify; the layers keep
// their torchvision parameters (W_g), and merge() adds B A into W_g, leaving the plain architecture.
//
// The full path (W_g + B A) is what the model computes while factors are attached: FullPath swaps
// each layer's `weight` member for W_g + B A for the scope of a forward (libtorch's Conv2d / Linear
// forward read that member; the registered parameter stays W_g), so gradients reach W_g, A and B.
// Without the scope the network runs the general path (W_g alone).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace btm {

// LoRA's A factor [rank, fan]: U(-1/sqrt(fan), 1/sqrt(fan)) from `gen` (kaiming-uniform with
// a = sqrt 5), on `device`, requiring gradients. MORE's factors and the PEFT LoRA (models/peft.h) share it.
torch::Tensor lora_a_init(int64_t rank, int64_t fan, torch::Generator& gen, const torch::Device& device);

class LowRank {
 public:
  struct Factor {
    std::string layer;  // module path, e.g. "layer3.0.conv1" or "fc"
    std::shared_ptr<torch::nn::Module> module;
    torch::Tensor weight;  // W_g: the layer's registered parameter
    torch::Tensor a, b;    // A [r, fan], B [out, r]
  };

  // The largest rank a weight of this shape allows: min(out, numel / out).
  static int64_t rank_limit(const torch::Tensor& weight);
  // The convolution and linear layers of `net` whose path is one of `prefixes` or lies under one
  // ("layer3" takes "layer3.0.conv1"; all layers when empty) and whose weight is in `trained`
  // (parameter names), in module order, without factors yet.
  static std::vector<Factor> eligible(torch::nn::Module& net, const std::vector<std::string>& prefixes,
                                      const std::vector<std::string>& trained);

  // Factors of rank `rank` on those layers; A drawn U(-1/sqrt(fan), 1/sqrt(fan)) from `gen` (LoRA's
  // kaiming-uniform bound), B = 0. The caller has checked that every layer allows the rank.
  LowRank(torch::nn::Module& net, const std::vector<std::string>& prefixes, const std::vector<std::string>& trained,
          int64_t rank, torch::Generator& gen);

  // Whether a trained tensor's name is a factor's.
  static bool is_factor(const std::string& name);
  int64_t rank() const { return rank_; }
  const std::vector<Factor>& factors() const { return factors_; }
  // The trained tensors, named "<layer>.lowrank_A" / "<layer>.lowrank_B".
  std::vector<std::pair<std::string, torch::Tensor>> parameters() const;
  // B A in the weight's shape (and memory format).
  static torch::Tensor delta(const Factor& f);
  // W_g + B A for the parameter `name` (as in a state dict) if it is a modified weight, else `t`.
  torch::Tensor merged(const std::string& name, const torch::Tensor& t) const;
  // W_g += B A in place, for good (the caller then drops this object).
  void merge();
  // B = 0 (the model then computes W_g alone on both paths); A is kept.
  void reset();
  int64_t bytes() const;

  // Scope: the layers compute with W_g + B A.
  class FullPath {
   public:
    explicit FullPath(const LowRank* lr);
    ~FullPath();
    FullPath(const FullPath&) = delete;
    FullPath& operator=(const FullPath&) = delete;

   private:
    const LowRank* lr_;
  };

 private:
  int64_t rank_;
  std::vector<Factor> factors_;
};

}  // namespace btm
