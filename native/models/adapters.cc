#include "models/adapters.h"

#include <cmath>

namespace btm {
namespace nn = torch::nn;

AdaptFormerImpl::AdaptFormerImpl(int64_t dim, int64_t bottleneck, double ln_eps, torch::Generator& gen) {
  ln = register_module("ln", nn::LayerNorm(nn::LayerNormOptions({dim}).eps(ln_eps)));
  down = register_module("down", nn::Linear(dim, bottleneck));
  up = register_module("up", nn::Linear(bottleneck, dim));
  scale = register_parameter("scale", torch::ones({1}));
  torch::NoGradGuard no_grad;
  // kaiming_normal_(a = sqrt 5, fan_in): std = sqrt(2 / (1 + 5)) / sqrt(fan_in)
  const double std = std::sqrt(1.0 / 3.0) / std::sqrt(double(dim));
  down->weight.copy_(torch::randn(down->weight.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat)) * std);
  down->bias.zero_();
  up->weight.zero_();
  up->bias.zero_();
}

torch::Tensor AdaptFormerImpl::forward(const torch::Tensor& x) {
  return up->forward(torch::relu(down->forward(ln->forward(x)))) * scale;
}

ResidualAdapterImpl::ResidualAdapterImpl(int64_t channels) {
  weight = register_parameter("weight", torch::zeros({channels, channels, 1, 1}));
}

torch::Tensor ResidualAdapterImpl::forward(const torch::Tensor& y) { return y + torch::conv2d(y, weight); }

}  // namespace btm
