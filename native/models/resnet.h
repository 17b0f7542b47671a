// ResNet family with torchvision's parameter and buffer names.
//   ImageNet-style: resnet18/34/50/101/152, resnext50_32x4d (torchvision v1.5 layout: stride on the 3x3).
//   CIFAR-style:    resnet8/20/32/56/110 (He et al. 2016: 3 stages of 16/32/64 channels, 3x3 stem,
//                   parameter-free "option A" shortcuts, as in the LDAM / MiSLAS / BTM CIFAR code),
//                   named with the same scheme (conv1, bn1, layerK.i.convJ, fc).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/adapters.h"
#include "models/network.h"

namespace btm {

struct ArchSpec {
  std::string name;
  bool cifar = false;       // 3x3 stem, 3 stages, option-A shortcuts
  bool bottleneck = false;  // Bottleneck (expansion 4) or BasicBlock (expansion 1)
  std::vector<int> blocks;  // blocks per stage
  int groups = 1;
  int width_per_group = 64;
  Family family = Family::ResNet;  // a ViT's config is looked up by name (models/vit.h)
};

// The ResNet rows of the architecture table (models/network.h has every family).
const std::vector<ArchSpec>& resnet_archs();

struct BlockImpl : torch::nn::Module {
  BlockImpl(const ArchSpec& spec, int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

  bool bottleneck;
  bool option_a_shortcut = false;  // CIFAR: x[:, :, ::2, ::2] zero-padded in channels
  int64_t pad_channels = 0;
  int64_t stride;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  ResidualAdapter adapter{nullptr};  // after the block when attached (models/peft.h), else null
  int64_t out_channels = 0;
};
TORCH_MODULE(Block);

struct ResNetImpl : NetworkImpl {
  ResNetImpl(const ArchSpec& spec, int64_t num_classes, int64_t in_channels);
  // Penultimate features: [N, feature_dim].
  torch::Tensor features(const torch::Tensor& x) override;
  torch::nn::Linear& classifier() override { return fc; }
  std::string classifier_prefix() const override { return "fc."; }
  std::string last_stage_prefix() const override { return "layer" + std::to_string(layers.size()) + "."; }

  ArchSpec spec;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

// Inference-only copy of a ResNet with every BatchNorm folded into the convolution before it
// (w' = w * gamma / sqrt(var + eps) per output channel, b' = beta - mean * gamma / sqrt(var + eps)):
// the same function as the eval-mode network, one op fewer per convolution. Built from the live
// weights (which stay unfolded and trainable); rebuild it after they change.
struct FoldedConv {
  torch::Tensor weight, bias;
  int64_t stride = 1, padding = 0, groups = 1;
  torch::Tensor forward(const torch::Tensor& x) const;
};

struct FoldedBlock {
  FoldedConv conv1, conv2, conv3, downsample;
  torch::Tensor adapter;  // a residual 1x1 adapter's weight (models/adapters.h), or undefined
  bool bottleneck = false, option_a_shortcut = false, has_downsample = false;
  int64_t pad_channels = 0, stride = 1;
  torch::Tensor forward(const torch::Tensor& x) const;
};

struct FoldedResNet {
  explicit FoldedResNet(ResNetImpl& net);
  // Penultimate features, as ResNetImpl::features in eval mode.
  torch::Tensor features(const torch::Tensor& x) const;

  bool cifar = false;
  FoldedConv stem;
  std::vector<FoldedBlock> blocks;
};

// Every parameter and buffer in torchvision's state_dict order (module by module: own parameters,
// then own buffers).
std::vector<std::pair<std::string, torch::Tensor>> ordered_state(torch::nn::Module& m);

}  // namespace btm
