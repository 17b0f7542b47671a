// Parameter-efficient modules that add layers (and cannot be merged into the trunk's weights): LIFT's
// AdaptFormer beside each ViT MLP and a residual 1x1 adapter after each ResNet block. The blocks hold
// them as optional members (null: the plain block, the torchvision layout); models/peft.h attaches
// them. Both start as exact no-ops (a zero up-projection / a zero 1x1 convolution).
#pragma once

#include <torch/torch.h>

namespace btm {

// AdaptFormer (Chen et al. 2022, as LIFT uses it): x -> scale * up(relu(down(ln(x)))), added beside the
// MLP of a pre-norm block; input is the residual stream before the block's ln_2. Names:
// adaptformer.{ln, down, up, scale}. down: kaiming-normal (a = sqrt 5) from `gen`, zero bias; up: zero
// weight and bias; scale: a learnable scalar, 1.
struct AdaptFormerImpl : torch::nn::Module {
  AdaptFormerImpl(int64_t dim, int64_t bottleneck, double ln_eps, torch::Generator& gen);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm ln{nullptr};
  torch::nn::Linear down{nullptr}, up{nullptr};
  torch::Tensor scale;  // [1]
};
TORCH_MODULE(AdaptFormer);

// A residual 1x1 adapter after a ResNet block (Rebuffi et al. 2017, series form): y -> y + conv1x1(y),
// no bias, zero-initialised. Name: adapter.weight.
struct ResidualAdapterImpl : torch::nn::Module {
  explicit ResidualAdapterImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& y);

  torch::Tensor weight;  // [C, C, 1, 1]
};
TORCH_MODULE(ResidualAdapter);

}  // namespace btm
