#include "core/model_core.h"

#include <algorithm>
#include <mutex>

#include "compat.h"
#include "core/onednn_off.h"
#include "distributed/model_sync.h"
#include "distributed/sync_batch_norm.h"
#include "runtime/executor.h"
#include "runtime/threads.h"
#include "train/autocast.h"
#include "train/batch.h"
#include "train/loss.h"
#include "train/more.h"
#include "train/step_log.h"

namespace btm {

namespace {

std::mutex g_init_mutex;  // model initialisation draws from libtorch's global generator

void stop_if_exiting() {
  if (exiting()) throw std::runtime_error("the process is exiting");
}

torch::Tensor flat(std::vector<torch::Tensor>& parts) { return torch::cat(parts).contiguous(); }

}  // namespace

ModelCore::ModelCore(const ArchSpec& spec_, int64_t num_classes_, int64_t in_channels_, int64_t image_size_,
                     torch::Device device_, uint64_t seed)
    : net(nullptr),
      spec(spec_),
      num_classes(num_classes_),
      in_channels(in_channels_),
      image_size(image_size_),
      device(device_),
      gen(compat::cpu_generator(seed)) {
  reseed(seed);
  {
    std::lock_guard<std::mutex> lock(g_init_mutex);
    torch::manual_seed(seed);
    net = make_network(spec, num_classes, in_channels, image_size);
  }
  net->to(device);
  set_optimizer(opt_cfg);
}

void ModelCore::set_optimizer(const OptimizerConfig& cfg) {
  opt_cfg = cfg;
  slots.clear();
  if (!cfg.lws) fold_lws();
  const auto head_prefix = net->classifier_prefix();
  const auto last_stage = net->last_stage_prefix();
  const bool cosine = peft && peft->config().cosine_scale > 0;
  for (const auto& p : net->named_parameters()) {
    const bool is_fc = p.key().rfind(head_prefix, 0) == 0;
    bool on = cfg.trainable == Trainable::Peft ? is_fc || peft->trains_base(p.key())
              : cfg.trainable == Trainable::LastBlock
                  ? is_fc || (!last_stage.empty() && p.key().rfind(last_stage, 0) == 0)
                  : cfg.trainable == Trainable::All || (cfg.trainable == Trainable::Classifier) == is_fc;
    if (cosine && p.key() == head_prefix + "bias") on = false;  // a cosine head has no bias
    auto t = p.value();
    t.set_requires_grad(on);
    t.mutable_grad() = torch::Tensor();
    if (on) slots.push_back({p.key(), t, {}});
  }
  if (cfg.lws) {
    if (!lws_scale.defined()) lws_scale = torch::ones({num_classes}, torch::TensorOptions().device(device));
    lws_scale.set_requires_grad(true);
    lws_scale.mutable_grad() = torch::Tensor();
    slots.push_back({head_prefix + "lws_scale", lws_scale, {}});
  }
  if (low_rank)
    for (const auto& [name, t] : low_rank->parameters()) slots.push_back({name, t, {}});
  if (peft && (cfg.trainable == Trainable::Peft || cfg.trainable == Trainable::All))
    for (const auto& [name, t] : peft->parameters()) {
      t.mutable_grad() = torch::Tensor();
      slots.push_back({name, t, {}});
    }
}

void ModelCore::attach_peft(const PeftConfig& cfg) {
  peft = std::make_shared<Peft>(*net, spec.family, cfg, gen);
  if (cfg.cosine_scale > 0) {  // the bias of a cosine head is unused: zero, as exported
    torch::NoGradGuard no_grad;
    net->classifier()->bias.zero_();
  }
  set_optimizer(opt_cfg);
  weights_changed();
}

void ModelCore::attach_low_rank(int64_t rank, const std::vector<std::string>& prefixes) {
  std::vector<std::string> trained;
  for (const auto& s : slots) trained.push_back(s.name);
  low_rank = std::make_shared<LowRank>(*net, prefixes, trained, rank, gen);
  for (const auto& [name, t] : low_rank->parameters()) slots.push_back({name, t, {}});
  weights_changed();
}

void ModelCore::merge_low_rank() {
  if (!low_rank) return;
  low_rank->merge();
  const auto params = low_rank->parameters();
  slots.erase(std::remove_if(slots.begin(), slots.end(),
                             [&](const ParamSlot& s) {
                               for (const auto& p : params)
                                 if (p.first == s.name) return true;
                               return false;
                             }),
              slots.end());
  low_rank.reset();
  weights_changed();
}

void ModelCore::freeze_outside_last_stage() {
  const auto stage = net->last_stage_prefix(), head = net->classifier_prefix();
  for (const auto& m : net->named_modules("", /*include_self=*/false)) {
    const auto name = m.key() + ".";
    if (name.rfind(stage, 0) != 0 && name.rfind(head, 0) != 0 && m.value()->children().empty()) m.value()->train(false);
  }
}

void ModelCore::fold_lws() {
  if (!lws_scale.defined()) return;
  weights_changed();
  torch::NoGradGuard no_grad;
  net->classifier()->weight.mul_(lws_scale.unsqueeze(1));
  net->classifier()->bias.mul_(lws_scale);
  drop_lws();
}

void ModelCore::drop_lws() {
  if (!lws_scale.defined()) return;
  const auto name = net->classifier_prefix() + "lws_scale";
  slots.erase(std::remove_if(slots.begin(), slots.end(), [&](const ParamSlot& s) { return s.name == name; }), slots.end());
  lws_scale = torch::Tensor();
}

std::vector<std::pair<std::string, torch::Tensor>> ModelCore::export_state() {
  auto st = state();
  if (low_rank)
    for (auto& [name, t] : st) t = low_rank->merged(name, t);
  torch::NoGradGuard no_grad;
  const auto head_prefix = net->classifier_prefix();
  if (peft) {
    for (auto& [name, t] : st) t = peft->effective(name, t);
    // A cosine head s W_n f / |f| is exported as the linear head s W_n (zero bias): the same
    // prediction (the two differ by the positive factor |f| per image), and loaded into a model with
    // the cosine head it gives the same logits (normalising s W_n gives W_n back).
    const double s = peft->config().cosine_scale;
    if (s > 0) {
      for (auto& [name, t] : st) {
        if (name == head_prefix + "weight") t = torch::nn::functional::normalize(t, torch::nn::functional::NormalizeFuncOptions().dim(1)) * s;
        if (name == head_prefix + "bias") t = torch::zeros_like(t);
      }
    }
  }
  if (!lws_scale.defined()) return st;
  for (auto& [name, t] : st) {
    if (name == head_prefix + "weight") t = t * lws_scale.unsqueeze(1);
    if (name == head_prefix + "bias") t = t * lws_scale;
  }
  return st;
}

std::vector<std::pair<std::string, torch::Tensor>> ModelCore::optimizer_state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  // the low-rank factors' buffers are left out: a saved state holds the merged weights, and a resumed
  // stage starts its factors afresh (B = 0)
  for (const auto& s : slots)
    if (s.momentum.defined() && !LowRank::is_factor(s.name) && !Peft::is_extra(s.name)) out.emplace_back(s.name + ".momentum_buffer", s.momentum);
  return out;
}

int64_t ModelCore::native_bytes() const {
  auto size = [](const torch::Tensor& t) { return t.defined() ? t.numel() * int64_t(t.element_size()) : int64_t(0); };
  int64_t bytes = 0;
  for (const auto& p : net->parameters()) bytes += size(p) + size(p.grad());
  for (const auto& b : net->buffers()) bytes += size(b);
  for (const auto& s : slots) bytes += size(s.momentum);
  if (lws_scale.defined()) bytes += size(lws_scale) + size(lws_scale.grad());
  if (low_rank) bytes += low_rank->bytes();
  if (peft) bytes += peft->bytes();
  return bytes;
}

void ModelCore::reseed(uint64_t seed) { gen.set_current_seed(seed ^ 0x9E3779B97F4A7C15ULL); }

// The classifier head on penultimate features `f`, with a pending LWS scale; hands `f` out on request.
torch::Tensor ModelCore::head(const torch::Tensor& f, torch::Tensor* features) {
  torch::Tensor z;
  if (peft && peft->config().cosine_scale > 0) {  // cosine classifier: s * cos(f, w_c)
    namespace F = torch::nn::functional;
    const auto opts = F::NormalizeFuncOptions().dim(1);
    z = torch::mm(F::normalize(f, opts), F::normalize(net->classifier()->weight, opts).t()) * peft->config().cosine_scale;
  } else {
    z = net->classifier()->forward(f);
  }
  if (lws_scale.defined()) z = z * lws_scale;
  if (features) *features = f;
  return z;
}

torch::Tensor ModelCore::logits(const torch::Tensor& x, torch::Tensor* features) {
  AutocastScope autocast(perf.amp, device);
  LowRank::FullPath full(low_rank.get());
  Peft::Scope scope(peft.get());
  return head(net->features(x), features);
}

torch::Tensor ModelCore::general_logits(const torch::Tensor& x, bool grad, torch::Tensor* features) {
  AutocastScope autocast(perf.amp, device);
  // In train mode BatchNorm updates its running statistics in place, and the full path's backward
  // still holds them: the general path runs on copies, swapped in and out (the statistics stay the
  // full path's, which is what the merged model computes with).
  struct Swap {
    torch::nn::BatchNorm2dImpl* bn;
    torch::Tensor mean, var, count;
  };
  std::vector<Swap> swaps;
  if (net->is_training()) {
    for (auto& m : net->modules(/*include_self=*/false)) {
      if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
        swaps.push_back({bn, bn->running_mean, bn->running_var, bn->num_batches_tracked});
        bn->running_mean = bn->running_mean.clone();
        bn->running_var = bn->running_var.clone();
        bn->num_batches_tracked = bn->num_batches_tracked.clone();
      }
    }
  }
  torch::Tensor z;
  try {
    torch::AutoGradMode mode(grad && torch::GradMode::is_enabled());
    z = head(net->features(x), features);
  } catch (...) {
    for (auto& s : swaps) s.bn->running_mean = s.mean, s.bn->running_var = s.var, s.bn->num_batches_tracked = s.count;
    throw;
  }
  for (auto& s : swaps) s.bn->running_mean = s.mean, s.bn->running_var = s.var, s.bn->num_batches_tracked = s.count;
  return z;
}

torch::Tensor ModelCore::folded_logits(const torch::Tensor& x, torch::Tensor* features) {
  const auto resnet = std::dynamic_pointer_cast<ResNetImpl>(net);
  if (!resnet) return logits(x, features);  // no BatchNorm to fold
  if (!folded) {
    LowRank::FullPath full(low_rank.get());
    Peft::Scope scope(peft.get());  // SSF folds into BatchNorm's affine, then into the convolution
    folded = std::make_shared<FoldedResNet>(*resnet);
  }
  AutocastScope autocast(perf.amp, device);
  LowRank::FullPath full(low_rank.get());  // fc (the head) may carry factors
  return head(folded->features(x), features);
}

bool ModelCore::onednn_crashes() const {
  if (!compat::kOneDnn1x1Crashes || !device.is_cpu()) return false;
  const auto resnet = std::dynamic_pointer_cast<ResNetImpl>(net);
  return resnet && resnet->spec.bottleneck;
}

void ModelCore::set_perf(const PerfConfig& cfg) {
  perf = cfg;
  // Channels-last on the CPU too (oneDNN's NHWC path), except where oneDNN 3.x (libtorch 2.x) crashes on 1x1
  // convolutions (compat.h): there only the CIFAR ResNets (3x3 convolutions, parameter-free shortcuts) go NHWC.
  if (compat::kOneDnn1x1Crashes && device.is_cpu()) {
    const auto resnet = std::dynamic_pointer_cast<ResNetImpl>(net);
    if (!resnet || !resnet->spec.cifar) perf.channels_last = false;
  }
  scaler.reset(cfg.loss_scale);
  weights_changed();
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(cfg.cudnn_benchmark);
  const auto fmt = perf.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(fmt));
  }
}

TrainResult ModelCore::train(const DataCore& data, const std::vector<int64_t>& indices, const TrainConfig& cfg) {
  OneDnnOff onednn_off(onednn_crashes());
  BatchMaker batches(data, indices, cfg, perf.channels_last, gen);
  const auto loss_t = loss_tensors(cfg.loss, device);
  const auto more_weights = vec_tensor(cfg.more.class_weights, device);
  scaler.set_enabled(perf.amp == Amp::FP16 && device.is_cuda());
  // a frozen BatchNorm (PEFT without norm tuning) stays in eval mode
  net->train(cfg.bn_train && (!peft || peft->tunes_norm()));
  if (opt_cfg.trainable == Trainable::LastBlock) freeze_outside_last_stage();
  StepLog log(batches.steps());
  int64_t skipped = 0;
  weights_changed();
  // data-parallel with SyncBatchNorm: the BatchNorm layers that train normalise over the global batch
  SyncBatchNormScope sync_bn_scope(dist && sync_bn && dist->size() > 1 ? dist.get() : nullptr);
  for (int64_t s = 0; s < batches.steps(); ++s) {
    stop_if_exiting();
    if (device.is_cpu()) apply_threads();  // an adaptive thread count follows the load step by step
    const Batch b = batches.next();  // gather, augment, normalise, mix up
    // this rank's weight in the sum of the ranks' gradients: its share of the global batch
    const double weight = !dist                      ? 1.0
                          : !cfg.grad_weights.empty() ? cfg.grad_weights[s]
                          : cfg.parts > 1             ? b.share
                                                      : 1.0 / dist->size();
    sync_bn_scope.set_share(weight);
    zero_grad(slots);
    const auto logits = this->logits(b.x).to(torch::kFloat);
    auto loss = training_loss(cfg.loss, loss_t, logits, b.y, b.y_mix, b.lam, b.t);
    if (cfg.more.on() && cfg.more.coefficients[s] != 0.0f) {  // MORE: + coefficient(t) * L_MORE
      const auto general = general_logits(b.x, cfg.more.general_grad).to(torch::kFloat);
      loss = loss + cfg.more.coefficients[s] *
                        more_discrepancy(cfg.more.discrepancy, logits, general, b.y, b.y_mix, b.lam, more_weights, b.t);
    }
    const auto sync = [&] {  // data-parallel: this rank's gradients weighted by its share, summed
      if (dist) sync_gradients(*dist, slots, weight);
    };
    if (scaler.backward(loss, slots, sync)) sgd_step(slots, opt_cfg, cfg.lrs[s]);
    else ++skipped;
    log.record(loss, logits, b);
  }
  auto r = log.result(batches.samples());
  r.skipped_steps = skipped;
  r.loss_scale = scaler.enabled() ? scaler.scale() : 0;
  return r;
}

EvalResult ModelCore::evaluate(const DataCore& data, const std::vector<int64_t>* indices, const EvalConfig& cfg) {
  OneDnnOff onednn_off(onednn_crashes());
  torch::NoGradGuard no_grad;
  const auto idx = indices ? index_tensor(*indices, device)
                           : torch::arange(data.n, torch::TensorOptions().dtype(torch::kLong).device(device));
  const int64_t n = idx.size(0);
  net->train(cfg.bn_train);
  if (cfg.bn_train) weights_changed();  // the running statistics move
  std::vector<torch::Tensor> preds, logits, feats;
  for (int64_t start = 0; start < n; start += cfg.batch_size) {
    stop_if_exiting();
    const int64_t len = std::min(cfg.batch_size, n - start);
    const auto x = to_input(data.images.index_select(0, idx.narrow(0, start, len)), cfg.normalize, device, perf.channels_last);
    torch::Tensor f;
    const auto z = cfg.general_path                ? general_logits(x, false, &f)
                   : cfg.fold_bn && !cfg.bn_train ? folded_logits(x, &f)
                                                  : this->logits(x, &f);
    preds.push_back(z.argmax(1).to(torch::kInt).to(torch::kCPU));
    if (cfg.want_logits) logits.push_back(z.to(torch::kFloat).to(torch::kCPU));
    if (cfg.want_features) feats.push_back(f.to(torch::kFloat).to(torch::kCPU));
  }
  EvalResult r;
  r.num_classes = num_classes;
  r.feature_dim = net->feature_dim;
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
