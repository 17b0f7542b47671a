#include "core.h"

#include "executor.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <regex>

namespace btm {

// ------------------------------------------------------------------------------------------------
// Threads and devices
// ------------------------------------------------------------------------------------------------
namespace {
std::atomic<int> g_threads{0};
std::mutex g_init_mutex;  // model initialisation draws from libtorch's global generator
}  // namespace

void set_threads(int n) {
  g_threads = n;
  // With OpenMP every thread that runs a parallel region owns a team of workers, and once more
  // threads are managed than there are cores libgomp stops spinning and every region pays for futex
  // wake-ups (a small training step ran 5x slower). The intra-op threads therefore belong to the
  // Executor thread that runs all long work (apply_threads); the calling JS thread keeps its short,
  // synchronous work (model init, state-dict copies) single-threaded so it never owns a team.
  at::set_num_threads(1);
}

int threads() { return g_threads > 0 ? g_threads.load() : at::get_num_threads(); }

void apply_threads() {
  // OpenMP's thread count is per calling thread: libuv's pool threads must be told too.
  const int n = g_threads;
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

bool parse_device(const std::string& s, torch::Device* out, std::string* err) {
  static const std::regex re("^(cpu|cuda)(?::([0-9]{1,3}))?$");
  std::smatch m;
  if (!std::regex_match(s, m, re) || (m[1] == "cpu" && m[2].matched)) {
    *err = "device must be 'cpu', 'cuda' or 'cuda:N', got '" + s + "'";
    return false;
  }
  if (m[1] == "cpu") {
    *out = torch::Device(torch::kCPU);
    return true;
  }
  if (!torch::cuda::is_available()) {
    *err = "device '" + s + "' requested but CUDA is not available (libtorch built without CUDA, or no GPU visible)";
    return false;
  }
  const int idx = m[2].matched ? std::stoi(m[2]) : 0;
  const int count = static_cast<int>(torch::cuda::device_count());
  if (idx >= count) {
    *err = "device '" + s + "' out of range: " + std::to_string(count) + " CUDA device(s) visible";
    return false;
  }
  *out = torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(idx));
  return true;
}

// ------------------------------------------------------------------------------------------------
// Loss
// ------------------------------------------------------------------------------------------------
torch::Tensor soft_target_loss(const torch::Tensor& logits, const torch::Tensor& ya, const torch::Tensor& yb,
                               double lam, const torch::Tensor& offsets, const torch::Tensor& smoothing) {
  const int64_t C = logits.size(1);
  const auto logp = torch::log_softmax(offsets.defined() ? logits + offsets : logits, 1);
  auto q = [&](const torch::Tensor& y) {
    auto onehot = torch::one_hot(y, C).to(logp.scalar_type());
    if (!smoothing.defined()) return onehot;
    auto eps = smoothing.index_select(0, y).unsqueeze(1);
    return onehot * (1 - eps) + eps / static_cast<double>(C);
  };
  const auto target = lam == 1.0 ? q(ya) : q(ya) * lam + q(yb) * (1.0 - lam);
  return -(target * logp).sum(1).mean();
}

torch::Tensor gml_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& offsets, double power) {
  const int64_t C = logits.size(1);
  const auto q = torch::softmax(offsets.defined() ? logits + offsets : logits, 1);
  const auto p = q.gather(1, y.unsqueeze(1)).squeeze(1).clamp(1e-5, 1.0);
  const auto opts = p.options();
  const auto sums = torch::zeros({C}, opts).index_add(0, y, p);
  const auto counts = torch::zeros({C}, opts).index_add(0, y, torch::ones_like(p));
  const auto present = counts > 0;
  const auto m = sums.masked_select(present) / counts.masked_select(present);
  const auto nll = -torch::log(m);
  return power == 1.0 ? nll.mean() : nll.pow(power).mean().pow(1.0 / power);
}

void sgd_step(std::vector<ParamSlot>& slots, const OptimizerConfig& cfg, double lr) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots) {
    const auto& g = s.param.grad();
    if (!g.defined()) continue;
    auto d = cfg.weight_decay != 0 ? g.add(s.param, cfg.weight_decay) : g;
    if (cfg.momentum != 0) {
      if (!s.momentum.defined()) {
        s.momentum = d.clone();
      } else {
        s.momentum.mul_(cfg.momentum).add_(d);
      }
      d = cfg.nesterov ? d.add(s.momentum, cfg.momentum) : s.momentum;
    }
    s.param.add_(d, -lr);
  }
}

// ------------------------------------------------------------------------------------------------
// Model
// ------------------------------------------------------------------------------------------------
namespace {

// Autocast for CUDA, restored on scope exit. The API moved in libtorch 2.4; both spellings are kept.
class AutocastScope {
 public:
  AutocastScope(Amp amp, const torch::Device& device) : on_(amp != Amp::None && device.is_cuda()) {
    if (!on_) return;
    const auto dtype = amp == Amp::BF16 ? at::kBFloat16 : at::kHalf;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
#endif
  }
  ~AutocastScope() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }

 private:
  bool on_;
};

torch::Tensor vec_tensor(const std::vector<float>& v, const torch::Device& device) {
  if (v.empty()) return {};
  return torch::tensor(v, torch::kFloat).to(device);
}

// uint8 batch -> float on [0,1], normalised per channel, in the model's memory format.
torch::Tensor to_input(const torch::Tensor& x_u8, const Normalize& norm, const torch::Device& device,
                       bool channels_last) {
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

// Random crop with zero padding and random horizontal flip, per sample, as one gather on the device.
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

}  // namespace

ModelCore::ModelCore(const ArchSpec& spec_, int64_t num_classes_, int64_t in_channels_, int64_t image_size_,
                     torch::Device device_, uint64_t seed)
    : net(nullptr),
      spec(spec_),
      num_classes(num_classes_),
      in_channels(in_channels_),
      image_size(image_size_),
      device(device_),
      gen(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  reseed(seed);
  {
    std::lock_guard<std::mutex> lock(g_init_mutex);
    torch::manual_seed(seed);
    net = ResNet(spec, num_classes, in_channels);
  }
  net->to(device);
  set_optimizer(opt_cfg);
}

void ModelCore::set_optimizer(const OptimizerConfig& cfg) {
  opt_cfg = cfg;
  slots.clear();
  if (!cfg.lws) fold_lws();
  for (const auto& p : net->named_parameters()) {
    const bool is_fc = p.key().rfind("fc.", 0) == 0;
    const bool on = cfg.trainable == Trainable::All || (cfg.trainable == Trainable::Classifier) == is_fc;
    auto t = p.value();
    t.set_requires_grad(on);
    t.mutable_grad() = torch::Tensor();
    if (on) slots.push_back({p.key(), t, {}});
  }
  if (cfg.lws) {
    if (!lws_scale.defined()) lws_scale = torch::ones({num_classes}, torch::TensorOptions().device(device));
    lws_scale.set_requires_grad(true);
    lws_scale.mutable_grad() = torch::Tensor();
    slots.push_back({"fc.lws_scale", lws_scale, {}});
  }
}

void ModelCore::fold_lws() {
  if (!lws_scale.defined()) return;
  torch::NoGradGuard no_grad;
  net->fc->weight.mul_(lws_scale.unsqueeze(1));
  net->fc->bias.mul_(lws_scale);
  drop_lws();
}

void ModelCore::drop_lws() {
  if (!lws_scale.defined()) return;
  slots.erase(std::remove_if(slots.begin(), slots.end(), [](const ParamSlot& s) { return s.name == "fc.lws_scale"; }),
              slots.end());
  lws_scale = torch::Tensor();
}

std::vector<std::pair<std::string, torch::Tensor>> ModelCore::export_state() {
  auto st = state();
  if (!lws_scale.defined()) return st;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : st) {
    if (name == "fc.weight") t = t * lws_scale.unsqueeze(1);
    if (name == "fc.bias") t = t * lws_scale;
  }
  return st;
}

std::vector<std::pair<std::string, torch::Tensor>> ModelCore::optimizer_state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& s : slots)
    if (s.momentum.defined()) out.emplace_back(s.name + ".momentum_buffer", s.momentum);
  return out;
}

void ModelCore::reseed(uint64_t seed) { gen.set_current_seed(seed ^ 0x9E3779B97F4A7C15ULL); }

torch::Tensor ModelCore::logits(const torch::Tensor& x, torch::Tensor* features) {
  AutocastScope autocast(perf.amp, device);
  auto f = net->features(x);
  auto z = net->fc->forward(f);
  if (lws_scale.defined()) z = z * lws_scale;
  if (features) *features = f;
  return z;
}

void ModelCore::set_perf(const PerfConfig& cfg) {
  perf = cfg;
  if (!device.is_cuda()) return;
  at::globalContext().setBenchmarkCuDNN(cfg.cudnn_benchmark);
  const auto fmt = cfg.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(fmt));
  }
}

TrainResult ModelCore::train(const DataCore& data, const std::vector<int64_t>& indices, const TrainConfig& cfg) {
  apply_threads();
  const int64_t n = static_cast<int64_t>(indices.size());
  const int64_t bs = cfg.batch_size;
  const int64_t steps = cfg.drop_last ? n / bs : (n + bs - 1) / bs;
  const bool cl = perf.channels_last && device.is_cuda();
  const bool fp16 = perf.amp == Amp::FP16 && device.is_cuda();
  const auto idx = index_tensor(indices, device);
  const auto offsets = vec_tensor(cfg.loss.logit_offsets, device);
  const auto smoothing = vec_tensor(cfg.loss.label_smoothing, device);
  net->train(cfg.bn_train);

  std::vector<torch::Tensor> losses, accs;
  losses.reserve(steps);
  accs.reserve(steps);
  for (int64_t s = 0; s < steps; ++s) {
    if (exiting()) throw std::runtime_error("the process is exiting");
    const int64_t start = s * bs, len = std::min(bs, n - start);
    const auto b_idx = idx.narrow(0, start, len);
    auto x_u8 = data.images.index_select(0, b_idx);
    const auto y = data.labels.index_select(0, b_idx);
    if (cfg.crop_padding > 0 || cfg.hflip) x_u8 = augment(x_u8, cfg.crop_padding, cfg.hflip, gen);
    auto x = to_input(x_u8, cfg.normalize, device, cl);
    double lam = 1.0;
    auto yb = y;
    if (cfg.mixup_alpha > 0) {
      lam = sample_beta(cfg.mixup_alpha, gen);
      const auto perm = torch::randperm(len, gen, torch::TensorOptions().dtype(torch::kLong)).to(device);
      x = x * lam + x.index_select(0, perm) * (1.0 - lam);
      yb = y.index_select(0, perm);
    }
    for (auto& slot : slots) slot.param.mutable_grad() = torch::Tensor();
    const auto logits = this->logits(x).to(torch::kFloat);
    const auto loss = cfg.loss.kind == LossKind::GML ? gml_loss(logits, y, offsets, cfg.loss.gml_power)
                                                     : soft_target_loss(logits, y, yb, lam, offsets, smoothing);
    if (fp16) {
      (loss * loss_scale).backward();
      torch::NoGradGuard no_grad;
      auto bad = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device));
      for (auto& slot : slots) {
        if (!slot.param.grad().defined()) continue;
        slot.param.mutable_grad().mul_(1.0 / loss_scale);
        bad += torch::isfinite(slot.param.grad()).logical_not().sum();
      }
      if (bad.item<float>() > 0) {
        loss_scale /= 2;
        good_steps = 0;
      } else {
        sgd_step(slots, opt_cfg, cfg.lrs[s]);
        if (++good_steps % 2000 == 0) loss_scale *= 2;
      }
    } else {
      loss.backward();
      sgd_step(slots, opt_cfg, cfg.lrs[s]);
    }
    torch::NoGradGuard no_grad;
    const auto pred = logits.argmax(1);
    auto acc = pred.eq(y).to(torch::kFloat).mean() * lam;
    if (lam != 1.0) acc = acc + pred.eq(yb).to(torch::kFloat).mean() * (1.0 - lam);
    losses.push_back(loss.detach());
    accs.push_back(acc);
  }
  TrainResult r;
  r.steps = steps;
  r.samples = cfg.drop_last ? steps * bs : n;
  if (steps > 0) {
    const auto l = torch::stack(losses).to(torch::kCPU).contiguous();
    const auto a = torch::stack(accs).to(torch::kCPU).contiguous();
    r.losses.assign(l.data_ptr<float>(), l.data_ptr<float>() + steps);
    r.accs.assign(a.data_ptr<float>(), a.data_ptr<float>() + steps);
  }
  return r;
}

EvalResult ModelCore::evaluate(const DataCore& data, const std::vector<int64_t>* indices, const EvalConfig& cfg) {
  apply_threads();
  torch::NoGradGuard no_grad;
  const bool cl = perf.channels_last && device.is_cuda();
  const auto idx = indices ? index_tensor(*indices, device)
                           : torch::arange(data.n, torch::TensorOptions().dtype(torch::kLong).device(device));
  const int64_t n = idx.size(0);
  net->train(cfg.bn_train);
  std::vector<torch::Tensor> preds, logits, feats;
  for (int64_t start = 0; start < n; start += cfg.batch_size) {
    if (exiting()) throw std::runtime_error("the process is exiting");
    const int64_t len = std::min(cfg.batch_size, n - start);
    const auto x = to_input(data.images.index_select(0, idx.narrow(0, start, len)), cfg.normalize, device, cl);
    torch::Tensor f;
    const auto z = this->logits(x, &f);
    preds.push_back(z.argmax(1).to(torch::kInt).to(torch::kCPU));
    if (cfg.want_logits) logits.push_back(z.to(torch::kFloat).to(torch::kCPU));
    if (cfg.want_features) feats.push_back(f.to(torch::kFloat).to(torch::kCPU));
  }
  EvalResult r;
  r.num_classes = num_classes;
  r.feature_dim = net->feature_dim;
  auto flat = [](std::vector<torch::Tensor>& parts) { return torch::cat(parts).contiguous(); };
  if (n > 0) {
    const auto p = flat(preds);
    r.preds.assign(p.data_ptr<int32_t>(), p.data_ptr<int32_t>() + p.numel());
    if (cfg.want_logits) {
      const auto t = flat(logits);
      r.logits.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    }
    if (cfg.want_features) {
      const auto t = flat(feats);
      r.features.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    }
  }
  return r;
}

}  // namespace btm
