#include "models/resnet.h"

#include "distributed/sync_batch_norm.h"

namespace btm {
namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).groups(groups).bias(false));
}

}  // namespace

const std::vector<ArchSpec>& resnet_archs() {
  static const std::vector<ArchSpec> table = {
      {"resnet8", true, false, {1, 1, 1}},
      {"resnet20", true, false, {3, 3, 3}},
      {"resnet32", true, false, {5, 5, 5}},
      {"resnet56", true, false, {9, 9, 9}},
      {"resnet110", true, false, {18, 18, 18}},
      {"resnet18", false, false, {2, 2, 2, 2}},
      {"resnet34", false, false, {3, 4, 6, 3}},
      {"resnet50", false, true, {3, 4, 6, 3}},
      {"resnet101", false, true, {3, 4, 23, 3}},
      {"resnet152", false, true, {3, 8, 36, 3}},
      {"resnext50_32x4d", false, true, {3, 4, 6, 3}, 32, 4},
  };
  return table;
}

BlockImpl::BlockImpl(const ArchSpec& spec, int64_t in_planes, int64_t planes, int64_t stride_)
    : bottleneck(spec.bottleneck), stride(stride_) {
  const int64_t expansion = bottleneck ? 4 : 1;
  const int64_t out_planes = planes * expansion;
  out_channels = out_planes;
  if (bottleneck) {
    const int64_t width = planes * spec.width_per_group / 64 * spec.groups;
    conv1 = register_module("conv1", conv(in_planes, width, 1, 1, 0));
    bn1 = register_module("bn1", nn::BatchNorm2d(width));
    conv2 = register_module("conv2", conv(width, width, 3, stride, 1, spec.groups));
    bn2 = register_module("bn2", nn::BatchNorm2d(width));
    conv3 = register_module("conv3", conv(width, out_planes, 1, 1, 0));
    bn3 = register_module("bn3", nn::BatchNorm2d(out_planes));
  } else {
    conv1 = register_module("conv1", conv(in_planes, planes, 3, stride, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  }
  if (stride != 1 || in_planes != out_planes) {
    if (spec.cifar) {
      option_a_shortcut = true;
      pad_channels = (out_planes - in_planes) / 2;
    } else {
      downsample = register_module(
          "downsample", nn::Sequential(conv(in_planes, out_planes, 1, stride, 0), nn::BatchNorm2d(out_planes)));
    }
  }
}

// The CIFAR "option A" shortcut: x[:, :, ::stride, ::stride], zero-padded by `pad` channels each side.
static torch::Tensor option_a_identity(const torch::Tensor& x, int64_t stride, int64_t pad) {
  using torch::indexing::None;
  using torch::indexing::Slice;
  const auto sub = x.index({Slice(), Slice(), Slice(None, None, stride), Slice(None, None, stride)});
  return torch::constant_pad_nd(sub, {0, 0, 0, 0, pad, pad}, 0);
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  // batch_norm: the layer's forward, or SyncBatchNorm in a data-parallel step (distributed/sync_batch_norm.h)
  auto out = torch::relu(batch_norm(*bn1, conv1->forward(x)));
  out = batch_norm(*bn2, conv2->forward(out));
  if (bottleneck) out = batch_norm(*bn3, conv3->forward(torch::relu(out)));
  torch::Tensor identity = x;
  if (option_a_shortcut) {
    identity = option_a_identity(x, stride, pad_channels);
  } else if (!downsample.is_empty()) {
    auto* conv = downsample->ptr(0)->as<nn::Conv2d>();
    auto* bn = downsample->ptr(1)->as<nn::BatchNorm2d>();
    identity = batch_norm(*bn, conv->forward(x));
  }
  out = torch::relu(out + identity);
  return adapter ? adapter->forward(out) : out;
}

ResNetImpl::ResNetImpl(const ArchSpec& spec_, int64_t num_classes, int64_t in_channels) : spec(spec_) {
  const int64_t expansion = spec.bottleneck ? 4 : 1;
  const int64_t stem = spec.cifar ? 16 : 64;
  if (spec.cifar) {
    conv1 = register_module("conv1", conv(in_channels, stem, 3, 1, 1));
  } else {
    conv1 = register_module("conv1", conv(in_channels, stem, 7, 2, 3));
  }
  bn1 = register_module("bn1", nn::BatchNorm2d(stem));
  int64_t in_planes = stem;
  for (size_t s = 0; s < spec.blocks.size(); ++s) {
    const int64_t planes = stem << s;
    const int64_t stride = s == 0 ? 1 : 2;
    nn::Sequential layer;
    for (int b = 0; b < spec.blocks[s]; ++b) {
      layer->push_back(Block(spec, in_planes, planes, b == 0 ? stride : 1));
      in_planes = planes * expansion;
    }
    layers.push_back(register_module("layer" + std::to_string(s + 1), layer));
  }
  feature_dim = in_planes;
  fc = register_module("fc", nn::Linear(feature_dim, num_classes));

  // Initialisation as in torchvision (ImageNet family) and in the CIFAR-LT code (kaiming normal on
  // convs and the classifier weight).
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      if (spec.cifar) {
        nn::init::kaiming_normal_(c->weight);
      } else {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      }
    } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
  if (spec.cifar) nn::init::kaiming_normal_(fc->weight);
}

torch::Tensor ResNetImpl::features(const torch::Tensor& x) {
  auto out = torch::relu(batch_norm(*bn1, conv1->forward(x)));
  if (!spec.cifar) out = torch::max_pool2d(out, 3, 2, 1);
  for (auto& layer : layers) out = layer->forward(out);
  return torch::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
}

namespace {

FoldedConv fold(const nn::Conv2d& conv, const nn::BatchNorm2d& bn) {
  torch::NoGradGuard no_grad;
  const auto& o = conv->options;
  const auto scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  FoldedConv f;
  const auto fmt = conv->weight.suggest_memory_format();
  f.weight = (conv->weight * scale.view({-1, 1, 1, 1})).contiguous(fmt);
  f.bias = bn->bias - bn->running_mean * scale;
  f.stride = (*o.stride())[0];
  f.padding = (*o.kernel_size())[0] / 2;  // every convolution of this family pads k / 2
  f.groups = o.groups();
  return f;
}

}  // namespace

torch::Tensor FoldedConv::forward(const torch::Tensor& x) const {
  return torch::conv2d(x, weight, bias, stride, padding, 1, groups);
}

torch::Tensor FoldedBlock::forward(const torch::Tensor& x) const {
  auto out = torch::relu(conv1.forward(x));
  out = conv2.forward(out);
  if (bottleneck) out = conv3.forward(torch::relu(out));
  torch::Tensor identity = x;
  if (option_a_shortcut) {
    identity = option_a_identity(x, stride, pad_channels);
  } else if (has_downsample) {
    identity = downsample.forward(x);
  }
  out = torch::relu(out + identity);
  return adapter.defined() ? out + torch::conv2d(out, adapter) : out;
}

FoldedResNet::FoldedResNet(ResNetImpl& net) : cifar(net.spec.cifar), stem(fold(net.conv1, net.bn1)) {
  for (auto& layer : net.layers) {
    for (size_t i = 0; i < layer->size(); ++i) {
      auto& b = *std::dynamic_pointer_cast<BlockImpl>(layer->ptr(i));
      FoldedBlock f;
      f.bottleneck = b.bottleneck;
      f.option_a_shortcut = b.option_a_shortcut;
      f.pad_channels = b.pad_channels;
      f.stride = b.stride;
      f.conv1 = fold(b.conv1, b.bn1);
      f.conv2 = fold(b.conv2, b.bn2);
      if (b.bottleneck) f.conv3 = fold(b.conv3, b.bn3);
      if (b.adapter) f.adapter = b.adapter->weight.detach();
      if (!b.downsample.is_empty()) {
        f.has_downsample = true;
        f.downsample = fold(nn::Conv2d(std::dynamic_pointer_cast<nn::Conv2dImpl>(b.downsample->ptr(0))),
                            nn::BatchNorm2d(std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(b.downsample->ptr(1))));
      }
      blocks.push_back(std::move(f));
    }
  }
}

torch::Tensor FoldedResNet::features(const torch::Tensor& x) const {
  auto out = torch::relu(stem.forward(x));
  if (!cifar) out = torch::max_pool2d(out, 3, 2, 1);
  for (const auto& b : blocks) out = b.forward(out);
  return torch::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
}

std::vector<std::pair<std::string, torch::Tensor>> ordered_state(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : m.named_modules(/*name_prefix=*/"", /*include_self=*/true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

}  // namespace btm
