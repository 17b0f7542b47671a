#include "train/batch.h"

#include <algorithm>

namespace btm {

BatchMaker::BatchMaker(const DataCore& data, const std::vector<int64_t>& indices, const TrainConfig& cfg,
                       bool channels_last, torch::Generator& gen)
    : data_(data), cfg_(cfg), channels_last_(channels_last), gen_(gen), idx_(index_tensor(indices, data.device)) {
  n_ = static_cast<int64_t>(indices.size());
  const int64_t bs = cfg.batch_size;
  steps_ = cfg.drop_last ? n_ / bs : (n_ + bs - 1) / bs;
  samples_ = cfg.drop_last ? steps_ * bs : n_;
}

Batch BatchMaker::next() {
  const int64_t start = step_++ * cfg_.batch_size, len = std::min(cfg_.batch_size, n_ - start);
  const auto b_idx = idx_.narrow(0, start, len);
  auto x_u8 = data_.images.index_select(0, b_idx);
  Batch b;
  if (data_.multi_label()) {
    b.t = data_.targets.index_select(0, b_idx).to(torch::kFloat);
  } else {
    b.y = data_.labels.index_select(0, b_idx);
    b.y_mix = b.y;
  }
  if (cfg_.crop_padding > 0 || cfg_.hflip) x_u8 = augment(x_u8, cfg_.crop_padding, cfg_.hflip, gen_);
  b.x = to_input(x_u8, cfg_.normalize, data_.device, channels_last_);
  if (cfg_.mixup_alpha > 0) {
    b.lam = sample_beta(cfg_.mixup_alpha, gen_);
    const auto perm = torch::randperm(len, gen_, torch::TensorOptions().dtype(torch::kLong)).to(data_.device);
    b.x = b.x * b.lam + b.x.index_select(0, perm) * (1.0 - b.lam);
    if (b.y.defined()) b.y_mix = b.y.index_select(0, perm);
    if (b.t.defined()) b.t = b.t * b.lam + b.t.index_select(0, perm) * (1.0 - b.lam);
  }
  return b;
}

torch::Tensor to_input(const torch::Tensor& x_u8, const Normalize& norm, const torch::Device& device, bool channels_last) {
  auto x = x_u8.to(torch::kFloat).div_(255.0);
  if (!norm.mean.empty()) {
    const int64_t C = x.size(1);
    auto mean = torch::tensor(norm.mean, torch::kFloat).to(device).view({1, C, 1, 1});
    auto std = torch::tensor(norm.std, torch::kFloat).to(device).view({1, C, 1, 1});
    x = x.sub_(mean).div_(std);
  }
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  return x;
}

torch::Tensor augment(const torch::Tensor& x, int64_t pad, bool hflip, torch::Generator& gen) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const auto dev = x.device();
  const auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  auto oy = pad > 0 ? torch::randint(0, 2 * pad + 1, {B}, gen, cpu_long) : torch::zeros({B}, cpu_long);
  auto ox = pad > 0 ? torch::randint(0, 2 * pad + 1, {B}, gen, cpu_long) : torch::zeros({B}, cpu_long);
  auto flip = hflip ? torch::randint(0, 2, {B}, gen, cpu_long).to(torch::kBool) : torch::zeros({B}, torch::kBool);
  auto cols0 = torch::arange(W, cpu_long);
  auto rows = (oy.unsqueeze(1) + torch::arange(H, cpu_long)).to(dev);
  auto cols = (torch::where(flip.unsqueeze(1), cols0.flip(0), cols0) + ox.unsqueeze(1)).to(dev);
  auto b = torch::arange(B, cpu_long).to(dev);
  auto xp = pad > 0 ? torch::constant_pad_nd(x, {pad, pad, pad, pad}, 0) : x;
  auto out = xp.permute({0, 2, 3, 1}).index({b.view({B, 1, 1}), rows.view({B, H, 1}), cols.view({B, 1, W})});
  return out.permute({0, 3, 1, 2}).contiguous();
}

double sample_beta(double alpha, torch::Generator& gen) {
  auto g = at::_standard_gamma(torch::full({2}, alpha, torch::kDouble), gen);
  const double a = g[0].item<double>(), b = g[1].item<double>();
  return a + b > 0 ? a / (a + b) : 0.5;
}

torch::Tensor index_tensor(const std::vector<int64_t>& idx, const torch::Device& device) {
  return torch::from_blob(const_cast<int64_t*>(idx.data()), {static_cast<int64_t>(idx.size())}, torch::kLong)
      .clone()
      .to(device);
}

torch::Tensor vec_tensor(const std::vector<float>& v, const torch::Device& device) {
  if (v.empty()) return {};
  return torch::tensor(v, torch::kFloat).to(device);
}

}  // namespace btm
