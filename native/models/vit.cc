#include "models/vit.h"

#include <cmath>

namespace btm {
namespace nn = torch::nn;

const std::vector<ViTConfig>& vit_configs() {
  //                                   name, patch, layers, heads, D, MLP, default image side
  static const std::vector<ViTConfig> table = {
      {"vit_b_16", 16, 12, 12, 768, 3072, 224},
      {"vit_b_32", 32, 12, 12, 768, 3072, 224},
      {"vit_l_16", 16, 24, 16, 1024, 4096, 224},
      {"vit_s_p4", 4, 12, 6, 384, 1536, 32},
      {"vit_t_p4", 4, 12, 3, 192, 768, 32},
      {"vit_mini_p4", 4, 6, 4, 128, 512, 32},
  };
  return table;
}

bool find_vit(const std::string& name, ViTConfig* out) {
  for (const auto& c : vit_configs()) {
    if (c.name == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

namespace {

// nn.init.trunc_normal_(t, mean 0, std, a = -2, b = 2) by PyTorch's method: uniform on the CDF
// interval, then the inverse normal CDF (a and b are absolute bounds, as in PyTorch).
void trunc_normal_(torch::Tensor t, double std, double a = -2.0, double b = 2.0) {
  torch::NoGradGuard no_grad;
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf(a / std), u = cdf(b / std);
  t.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(a, b);
}

nn::LayerNorm layer_norm(const ViTConfig& cfg) {
  return nn::LayerNorm(nn::LayerNormOptions({cfg.hidden_dim}).eps(cfg.ln_eps));
}

}  // namespace

SelfAttentionImpl::SelfAttentionImpl(int64_t dim_, int64_t heads_) : dim(dim_), heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * dim}));
  out_proj = register_module("out_proj", nn::Linear(dim, dim));
  // As nn.MultiheadAttention._reset_parameters (out_proj.weight keeps nn.Linear's init).
  nn::init::xavier_uniform_(in_proj_weight);
  nn::init::zeros_(out_proj->bias);
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), len = x.size(1), hd = dim / heads;
  const auto qkv = torch::linear(x, in_proj_weight, in_proj_bias).view({n, len, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  // [N, H, L, hd] each; q scaled before the product, as PyTorch's attention does.
  const auto q = qkv[0] * (1.0 / std::sqrt(double(hd)));
  const auto attn = torch::softmax(torch::matmul(q, qkv[1].transpose(-2, -1)), -1);
  const auto out = torch::matmul(attn, qkv[2]).transpose(1, 2).reshape({n, len, dim});
  return out_proj->forward(out);
}

MlpImpl::MlpImpl(int64_t dim, int64_t mlp_dim) {
  fc1 = register_module("0", nn::Linear(dim, mlp_dim));
  fc2 = register_module("3", nn::Linear(mlp_dim, dim));
  for (auto* l : {&fc1, &fc2}) {  // torchvision's MLPBlock init
    nn::init::xavier_uniform_((*l)->weight);
    nn::init::normal_((*l)->bias, 0.0, 1e-6);
  }
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2->forward(torch::gelu(fc1->forward(x))); }

EncoderBlockImpl::EncoderBlockImpl(const ViTConfig& cfg) {
  ln_1 = register_module("ln_1", layer_norm(cfg));
  self_attention = register_module("self_attention", SelfAttention(cfg.hidden_dim, cfg.num_heads));
  ln_2 = register_module("ln_2", layer_norm(cfg));
  mlp = register_module("mlp", Mlp(cfg.hidden_dim, cfg.mlp_dim));
}

torch::Tensor EncoderBlockImpl::forward(const torch::Tensor& x) {
  const auto y = x + self_attention->forward(ln_1->forward(x));
  const auto out = y + mlp->forward(ln_2->forward(y));
  return adaptformer ? out + adaptformer->forward(y) : out;
}

EncoderImpl::EncoderImpl(const ViTConfig& cfg, int64_t seq_length) {
  pos_embedding = register_parameter("pos_embedding", torch::empty({1, seq_length, cfg.hidden_dim}));
  nn::init::normal_(pos_embedding, 0.0, 0.02);  // from BERT, as torchvision
  layers = register_module("layers", nn::Sequential());
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    blocks.push_back(EncoderBlock(cfg));
    layers->push_back("encoder_layer_" + std::to_string(i), blocks.back());
  }
  ln = register_module("ln", layer_norm(cfg));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x) {
  auto out = x + pos_embedding;
  for (auto& b : blocks) out = b->forward(out);
  return ln->forward(out);
}

ViTImpl::ViTImpl(const ViTConfig& cfg_, int64_t num_classes, int64_t in_channels, int64_t image_size_)
    : cfg(cfg_), image_size(image_size_) {
  TORCH_CHECK(image_size > 0 && image_size % cfg.patch_size == 0, cfg.name, ": image size ", image_size,
              " is not a positive multiple of the patch size ", cfg.patch_size);
  const int64_t side = image_size / cfg.patch_size;
  class_token = register_parameter("class_token", torch::zeros({1, 1, cfg.hidden_dim}));
  conv_proj = register_module(
      "conv_proj", nn::Conv2d(nn::Conv2dOptions(in_channels, cfg.hidden_dim, cfg.patch_size).stride(cfg.patch_size)));
  encoder = register_module("encoder", Encoder(cfg, side * side + 1));
  heads = register_module("heads", nn::Sequential());
  head = nn::Linear(cfg.hidden_dim, num_classes);
  heads->push_back("head", head);
  feature_dim = cfg.hidden_dim;
  // torchvision's init: the patchify stem truncated normal with std sqrt(1 / fan_in), zero bias;
  // the head all zeros.
  trunc_normal_(conv_proj->weight, std::sqrt(1.0 / double(in_channels * cfg.patch_size * cfg.patch_size)));
  nn::init::zeros_(conv_proj->bias);
  nn::init::zeros_(head->weight);
  nn::init::zeros_(head->bias);
}

torch::Tensor ViTImpl::features(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(2) == image_size && x.size(3) == image_size, cfg.name, " expects ", image_size,
              "x", image_size, " images, got input of shape ", x.sizes());
  const int64_t n = x.size(0);
  // [N, C, H, W] -> [N, D, h, w] -> [N, h*w, D], the class token first.
  auto tokens = conv_proj->forward(x).flatten(2).transpose(1, 2);
  tokens = torch::cat({class_token.expand({n, -1, -1}), tokens}, 1);
  return encoder->forward(tokens).select(1, 0);
}

}  // namespace btm
