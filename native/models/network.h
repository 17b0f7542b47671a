// What ModelCore needs of a network, whatever its family: penultimate features, the linear
// classifier on them, and the architecture table. ResNets (models/resnet.h) and Vision Transformers
// (models/vit.h) implement it; each family's config and constructor live in its own file.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace btm {

enum class Family { ResNet, ViT };

struct NetworkImpl : torch::nn::Module {
  // Penultimate features: [N, feature_dim].
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
  // The linear classifier on the features (ResNet `fc`, ViT `heads.head`).
  virtual torch::nn::Linear& classifier() = 0;
  // Its state-dict prefix, with the trailing dot ("fc.", "heads.head.").
  virtual std::string classifier_prefix() const = 0;
  // The state-dict prefix of the last residual stage, with the trailing dot ("layer3." for the CIFAR
  // ResNets, "layer4." for the ImageNet ones); empty where the family has no such stage (ViT).
  virtual std::string last_stage_prefix() const { return ""; }
  torch::Tensor forward(const torch::Tensor& x) { return classifier()->forward(features(x)); }

  int64_t feature_dim = 0;
};

struct ArchSpec;

// Known architecture names, every family, for error messages and the TypeScript layer.
const std::vector<std::string>& arch_names();
// Returns false when the name is unknown.
bool find_arch(const std::string& name, ArchSpec* out);
// A fresh network of the named architecture with its family's initialisation. `image_size` must be
// resolved (ViT: arch_default_image_size when the user gave none) and valid (checked in the binding).
std::shared_ptr<NetworkImpl> make_network(const ArchSpec& spec, int64_t num_classes, int64_t in_channels,
                                          int64_t image_size);
// The image side the architecture is built for when the user gives none (0: any size, as ResNets).
int64_t arch_default_image_size(const ArchSpec& spec);
// The side the image size must be a multiple of (a ViT's patch; 1 for ResNets).
int64_t arch_patch_size(const ArchSpec& spec);

}  // namespace btm
