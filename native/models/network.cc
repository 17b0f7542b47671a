#include "models/network.h"

#include "models/resnet.h"
#include "models/vit.h"

namespace btm {

namespace {

const std::vector<ArchSpec>& all_archs() {
  static const std::vector<ArchSpec> table = [] {
    auto v = resnet_archs();
    for (const auto& c : vit_configs()) {
      ArchSpec a;
      a.name = c.name;
      a.family = Family::ViT;
      v.push_back(a);
    }
    return v;
  }();
  return table;
}

ViTConfig vit_config(const ArchSpec& spec) {
  ViTConfig c;
  TORCH_CHECK(find_vit(spec.name, &c), "no ViT named '", spec.name, "'");
  return c;
}

}  // namespace

const std::vector<std::string>& arch_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& a : all_archs()) v.push_back(a.name);
    return v;
  }();
  return names;
}

bool find_arch(const std::string& name, ArchSpec* out) {
  for (const auto& a : all_archs()) {
    if (a.name == name) {
      *out = a;
      return true;
    }
  }
  return false;
}

int64_t arch_default_image_size(const ArchSpec& spec) {
  return spec.family == Family::ViT ? vit_config(spec).image_size : 0;
}

int64_t arch_patch_size(const ArchSpec& spec) { return spec.family == Family::ViT ? vit_config(spec).patch_size : 1; }

std::shared_ptr<NetworkImpl> make_network(const ArchSpec& spec, int64_t num_classes, int64_t in_channels,
                                          int64_t image_size) {
  if (spec.family == Family::ViT) return std::make_shared<ViTImpl>(vit_config(spec), num_classes, in_channels, image_size);
  return std::make_shared<ResNetImpl>(spec, num_classes, in_channels);
}

}  // namespace btm
