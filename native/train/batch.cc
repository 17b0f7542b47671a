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
  if (cfg.parts > 1) {  // this rank's samples: its part of every global batch
    samples_ = 0;
    for (int64_t s = 0; s < steps_; ++s) {
      const auto [a, b] = batch_part(std::min(bs, n_ - s * bs), cfg.part, cfg.parts);
      samples_ += b - a;
    }
  }
}

Batch BatchMaker::next() {
  const int64_t start = step_++ * cfg_.batch_size, len = std::min(cfg_.batch_size, n_ - start);
  if (cfg_.parts > 1) return next_part(start, len);
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

Batch BatchMaker::next_part(int64_t start, int64_t len) {
  const auto [a, e] = batch_part(len, cfg_.part, cfg_.parts);
  const int64_t n = e - a;
  const auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  // the draws of the whole global batch, in the order next() makes them
  const bool aug = cfg_.crop_padding > 0 || cfg_.hflip;
  AugmentDraw draw;
  if (aug) draw = draw_augment(len, cfg_.crop_padding, cfg_.hflip, gen_);
  const bool mix = cfg_.mixup_alpha > 0;
  Batch b;
  b.share = double(n) / double(len);
  torch::Tensor perm;
  if (mix) {
    b.lam = sample_beta(cfg_.mixup_alpha, gen_);
    perm = torch::randperm(len, gen_, cpu_long);
  }
  // the rows built here: this part, then (mixup) the partners of its rows
  auto rows = torch::arange(a, e, cpu_long);
  if (mix) rows = torch::cat({rows, perm.narrow(0, a, n)});
  const auto b_idx = idx_.narrow(0, start, len).index_select(0, rows.to(data_.device));
  auto x_u8 = data_.images.index_select(0, b_idx);
  if (aug) x_u8 = apply_augment(x_u8, cfg_.crop_padding, {draw.oy.index_select(0, rows), draw.ox.index_select(0, rows), draw.flip.index_select(0, rows)});
  auto x = to_input(x_u8, cfg_.normalize, data_.device, channels_last_);
  const auto own = b_idx.narrow(0, 0, n);
  if (data_.multi_label()) {
    b.t = data_.targets.index_select(0, own).to(torch::kFloat);
  } else {
    b.y = data_.labels.index_select(0, own);
    b.y_mix = b.y;
  }
  if (!mix) {
    b.x = x;
    return b;
  }
  // row i: x_i lam + x_perm(i) (1 - lam), the same float operations as next()
  const auto partner = b_idx.narrow(0, n, n);
  b.x = x.narrow(0, 0, n) * b.lam + x.narrow(0, n, n) * (1.0 - b.lam);
  if (b.y.defined()) b.y_mix = data_.labels.index_select(0, partner);
  if (b.t.defined()) b.t = b.t * b.lam + data_.targets.index_select(0, partner).to(torch::kFloat) * (1.0 - b.lam);
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
  return apply_augment(x, pad, draw_augment(x.size(0), pad, hflip, gen));
}

AugmentDraw draw_augment(int64_t B, int64_t pad, bool hflip, torch::Generator& gen) {
  const auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  AugmentDraw d;
  d.oy = pad > 0 ? torch::randint(0, 2 * pad + 1, {B}, gen, cpu_long) : torch::zeros({B}, cpu_long);
  d.ox = pad > 0 ? torch::randint(0, 2 * pad + 1, {B}, gen, cpu_long) : torch::zeros({B}, cpu_long);
  d.flip = hflip ? torch::randint(0, 2, {B}, gen, cpu_long).to(torch::kBool) : torch::zeros({B}, torch::kBool);
  return d;
}

torch::Tensor apply_augment(const torch::Tensor& x, int64_t pad, const AugmentDraw& d) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const auto dev = x.device();
  const auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  const auto &oy = d.oy, &ox = d.ox, &flip = d.flip;
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
