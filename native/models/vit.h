// Vision Transformer (Dosovitskiy et al. 2021) with torchvision's parameter names and layout
// (torchvision.models.VisionTransformer, no conv stem, no representation layer):
//   class_token [1,1,D], conv_proj (patchify, kernel = stride = patch), encoder.pos_embedding [1,1+P,D],
//   encoder.layers.encoder_layer_N.{ln_1, self_attention.{in_proj_weight, in_proj_bias, out_proj},
//   ln_2, mlp.0, mlp.3}, encoder.ln, heads.head; LayerNorm eps 1e-6, exact (erf) GELU, pre-norm
//   blocks, the class token's output as the features. torchvision >= 0.13 (Debian bookworm's 0.14, the
//   trixie leg's 0.21) names the MLP linears mlp.0 / mlp.3; releases before that named them
//   mlp.linear_1 / mlp.linear_2, which Model.loadStateDict (src/model.ts) renames on load, as
//   torchvision's own loader does. Dropout is not implemented (torchvision's ViTs default to 0).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/adapters.h"
#include "models/network.h"

namespace btm {

struct ViTConfig {
  std::string name;
  int64_t patch_size = 16;
  int64_t num_layers = 12;
  int64_t num_heads = 12;
  int64_t hidden_dim = 768;
  int64_t mlp_dim = 3072;
  int64_t image_size = 224;  // default when the model options give none
  double ln_eps = 1e-6;
};

// torchvision's vit_b_16, vit_b_32, vit_l_16, and small CPU-scale shapes at 32x32 with 4x4 patches:
//   vit_s_p4    ViT-Small (DeiT-S) shape: 12 layers, 6 heads, D 384, MLP 1536;
//   vit_t_p4    ViT-Tiny (DeiT-Ti) shape: 12 layers, 3 heads, D 192, MLP 768;
//   vit_mini_p4 a CPU-sized transformer (not from a paper): 6 layers, 4 heads, D 128, MLP 512.
const std::vector<ViTConfig>& vit_configs();
// Returns false when the name is not a ViT.
bool find_vit(const std::string& name, ViTConfig* out);

// nn.MultiheadAttention(D, heads, batch_first=True) as a ViT uses it (self-attention, no mask, q k v
// projected by one packed matrix), with its parameter names.
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // [N, L, D] -> [N, L, D]

  int64_t dim, heads;
  torch::Tensor in_proj_weight, in_proj_bias;  // [3D, D], [3D]: q, k, v stacked
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(SelfAttention);

// torchvision's MLPBlock: Linear(D, M) -> GELU -> Linear(M, D), registered as "0" and "3".
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t mlp_dim);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct EncoderBlockImpl : torch::nn::Module {
  EncoderBlockImpl(const ViTConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  SelfAttention self_attention{nullptr};
  Mlp mlp{nullptr};
  AdaptFormer adaptformer{nullptr};  // beside the MLP when attached (models/peft.h), else null
};
TORCH_MODULE(EncoderBlock);

struct EncoderImpl : torch::nn::Module {
  EncoderImpl(const ViTConfig& cfg, int64_t seq_length);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor pos_embedding;  // [1, seq_length, D]
  torch::nn::Sequential layers{nullptr};
  std::vector<EncoderBlock> blocks;  // the layers, typed
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(Encoder);

struct ViTImpl : NetworkImpl {
  // `image_size` must be a multiple of cfg.patch_size.
  ViTImpl(const ViTConfig& cfg, int64_t num_classes, int64_t in_channels, int64_t image_size);
  torch::Tensor features(const torch::Tensor& x) override;
  torch::nn::Linear& classifier() override { return head; }
  std::string classifier_prefix() const override { return "heads.head."; }

  ViTConfig cfg;
  int64_t image_size;
  torch::Tensor class_token;  // [1, 1, D]
  torch::nn::Conv2d conv_proj{nullptr};
  Encoder encoder{nullptr};
  torch::nn::Sequential heads{nullptr};
  torch::nn::Linear head{nullptr};  // heads.head
};

}  // namespace btm
