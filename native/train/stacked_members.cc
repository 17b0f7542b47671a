#include "train/stacked_members.h"

#include "core/model_core.h"
#include "runtime/executor.h"
#include "train/autocast.h"
#include "train/batch.h"
#include "train/loss.h"
#include "train/step_log.h"

namespace btm {
namespace nn = torch::nn;

namespace {

bool is_head(const std::string& name, const std::string& head) { return name.rfind(head, 0) == 0; }

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Member k's part of a stacked tensor: a row of the classifier's [N, ...], else its block of dim 0.
torch::Tensor part(const torch::Tensor& t, bool head, int64_t k, int64_t n) {
  if (head) return t[k];
  const int64_t rows = t.size(0) / n;
  return t.narrow(0, k * rows, rows);
}

}  // namespace

std::string stacked_unsupported(const MemberCores& cores) {
  const auto& c0 = *cores[0];
  if (!std::dynamic_pointer_cast<ResNetImpl>(c0.net)) return "only ResNets run stacked (" + c0.spec.name + " is not one)";
  for (const auto& m : c0.net->modules(/*include_self=*/false)) {
    if (const auto* b = m->as<nn::BatchNorm2d>()) {
      if (!b->options.momentum().has_value() || !b->options.track_running_stats())
        return "a BatchNorm without a running-average momentum";
    }
  }
  for (size_t k = 0; k < cores.size(); ++k) {
    const auto& c = *cores[k];
    const std::string m = "models[" + std::to_string(k) + "]";
    // one architecture, class count and channel count: checked by the binding (members_arg)
    if (c.peft) return m + " has PEFT modules";
    if (c.low_rank) return m + " has MORE's low-rank factors";
    if (c.lws_scale.defined()) return m + " trains an LWS scale";
    if (c.opt_cfg.trainable == Trainable::LastBlock)
      return m + " trains its last block only (the BatchNorm statistics before it stay fixed, which the stacked network does not do)";
    if (c.dist) return m + " is in a process group";
    if (c.device.is_cuda() && c.perf.amp == Amp::FP16)
      return m + " trains in fp16 with loss scaling (each member skips its own overflowing steps)";
    if (c.device != c0.device || c.perf.amp != c0.perf.amp || c.perf.channels_last != c0.perf.channels_last)
      return m + "'s device, amp or memory format differs from models[0]'s";
    if (c.opt_cfg.momentum != c0.opt_cfg.momentum || c.opt_cfg.weight_decay != c0.opt_cfg.weight_decay ||
        c.opt_cfg.nesterov != c0.opt_cfg.nesterov || c.slots.size() != c0.slots.size())
      return m + "'s optimizer settings differ from models[0]'s";
    for (size_t i = 0; i < c.slots.size(); ++i)
      if (c.slots[i].name != c0.slots[i].name) return m + " trains other parameters than models[0]";
  }
  return "";
}

std::string stacked_train_unsupported(const MemberCores& cores, const std::vector<std::vector<int64_t>>& idx,
                                      const std::vector<TrainConfig>& cfgs) {
  const auto why = stacked_unsupported(cores);
  if (!why.empty()) return why;
  for (size_t k = 1; k < cores.size(); ++k) {
    const std::string m = "indices[" + std::to_string(k) + "]";
    if (idx[k].size() != idx[0].size()) return m + " has another length than indices[0] (the members' batches must match in size)";
    if (cfgs[k].lrs != cfgs[0].lrs) return "member " + std::to_string(k) + "'s learning rates differ from member 0's";
  }
  for (const auto& c : cfgs)
    if (c.more.on()) return "MORE's rebalancing term is on";
  return "";
}

StackedResNet::StackedResNet(const MemberCores& cores, bool train) : cores_(cores), n_(static_cast<int64_t>(cores.size())) {
  torch::NoGradGuard no_grad;
  const auto& c0 = *cores[0];
  const auto head = c0.net->classifier_prefix();
  const auto fmt = c0.perf.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto stack = [&](const std::string& name, const std::vector<torch::Tensor>& parts) {
    if (is_head(name, head)) return torch::stack(parts);
    auto t = torch::cat(parts);
    return t.dim() == 4 ? t.contiguous(fmt) : t;
  };
  std::vector<torch::OrderedDict<std::string, torch::Tensor>> params, buffers;
  for (const auto& c : cores) {
    params.push_back(c->net->named_parameters());
    buffers.push_back(c->net->named_buffers());
  }
  for (const auto& p : params[0]) {
    std::vector<torch::Tensor> parts;
    for (auto& d : params) parts.push_back(d[p.key()].detach());
    t_[p.key()] = stack(p.key(), parts);
  }
  for (const auto& b : buffers[0]) {
    if (ends_with(b.key(), "num_batches_tracked")) continue;  // counted in write_back
    std::vector<torch::Tensor> parts;
    for (auto& d : buffers) parts.push_back(d[b.key()]);
    t_[b.key()] = stack(b.key(), parts);
  }
  if (!train) return;
  for (size_t i = 0; i < c0.slots.size(); ++i) {
    const auto& name = c0.slots[i].name;
    auto& t = t_.at(name);
    t.set_requires_grad(true);
    bool any = false;
    for (const auto& c : cores) any = any || c->slots[i].momentum.defined();
    torch::Tensor momentum;
    if (any) {  // a buffer not started yet is zeros: SGD's first step (buf = d) is m * 0 + d
      std::vector<torch::Tensor> parts;
      for (const auto& c : cores) {
        const auto& s = c->slots[i];
        parts.push_back(s.momentum.defined() ? s.momentum : torch::zeros_like(s.param));
      }
      momentum = stack(name, parts).contiguous(t.suggest_memory_format());
    }
    slots.push_back({name, t, momentum});
  }
}

const torch::Tensor& StackedResNet::at(const std::string& name) const { return t_.at(name); }

torch::Tensor StackedResNet::conv(const torch::Tensor& x, const std::string& name, const nn::Conv2d& c) {
  const auto& o = c->options;
  // every convolution of the family pads k / 2 and has no bias (as FoldedConv in models/resnet.cc)
  return torch::conv2d(x, at(name + ".weight"), {}, (*o.stride())[0], (*o.kernel_size())[0] / 2, 1, o.groups() * n_);
}

torch::Tensor StackedResNet::bn(const torch::Tensor& x, const std::string& name, const nn::BatchNorm2d& m, bool train) {
  // what BatchNorm2dImpl::forward calls, on the members' channels side by side
  return torch::batch_norm(x, at(name + ".weight"), at(name + ".bias"), at(name + ".running_mean"), at(name + ".running_var"),
                           train, m->options.momentum().value(), m->options.eps(), at::globalContext().userEnabledCuDNN());
}

torch::Tensor StackedResNet::forward(const torch::Tensor& x, bool bn_train) {
  using torch::indexing::None;
  using torch::indexing::Slice;
  auto& c0 = *cores_[0];
  auto& net = dynamic_cast<ResNetImpl&>(*c0.net);
  AutocastScope autocast(c0.perf.amp, c0.device);
  auto out = torch::relu(bn(conv(x, "conv1", net.conv1), "bn1", net.bn1, bn_train));
  if (!net.spec.cifar) out = torch::max_pool2d(out, 3, 2, 1);
  for (size_t s = 0; s < net.layers.size(); ++s) {
    for (size_t i = 0; i < net.layers[s]->size(); ++i) {
      const auto& b = *std::dynamic_pointer_cast<BlockImpl>(net.layers[s]->ptr(i));
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      auto y = torch::relu(bn(conv(out, p + "conv1", b.conv1), p + "bn1", b.bn1, bn_train));
      y = bn(conv(y, p + "conv2", b.conv2), p + "bn2", b.bn2, bn_train);
      if (b.bottleneck) y = bn(conv(torch::relu(y), p + "conv3", b.conv3), p + "bn3", b.bn3, bn_train);
      torch::Tensor identity = out;
      if (b.option_a_shortcut) {  // x[:, :, ::2, ::2], each member's channels zero-padded on both sides
        const auto sub = out.index({Slice(), Slice(), Slice(None, None, b.stride), Slice(None, None, b.stride)});
        const int64_t bs = sub.size(0), h = sub.size(2), w = sub.size(3);
        identity = torch::constant_pad_nd(sub.reshape({bs, n_, -1, h, w}), {0, 0, 0, 0, b.pad_channels, b.pad_channels}, 0)
                       .reshape({bs, -1, h, w});
      } else if (!b.downsample.is_empty()) {
        const nn::Conv2d dc(std::dynamic_pointer_cast<nn::Conv2dImpl>(b.downsample->ptr(0)));
        const nn::BatchNorm2d db(std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(b.downsample->ptr(1)));
        identity = bn(conv(out, p + "downsample.0", dc), p + "downsample.1", db, bn_train);
      }
      out = torch::relu(y + identity);
    }
  }
  const auto f = torch::adaptive_avg_pool2d(out, {1, 1}).reshape({out.size(0), n_, -1}).transpose(0, 1);  // [N, B, F]
  const auto head = c0.net->classifier_prefix();
  return torch::baddbmm(at(head + "bias").unsqueeze(1), f, at(head + "weight").transpose(1, 2));  // [N, B, K]
}

void StackedResNet::write_back(int64_t bn_steps) {
  torch::NoGradGuard no_grad;
  const auto head = cores_[0]->net->classifier_prefix();
  for (int64_t k = 0; k < n_; ++k) {
    auto& c = *cores_[k];
    for (auto& p : c.net->named_parameters()) p.value().copy_(part(t_.at(p.key()), is_head(p.key(), head), k, n_));
    for (auto& b : c.net->named_buffers()) {
      if (ends_with(b.key(), "num_batches_tracked")) b.value().add_(bn_steps);
      else b.value().copy_(part(t_.at(b.key()), false, k, n_));
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      if (!slots[i].momentum.defined()) continue;
      auto& s = c.slots[i];
      const auto m = part(slots[i].momentum, is_head(s.name, head), k, n_);
      if (s.momentum.defined()) s.momentum.copy_(m);
      else s.momentum = m.contiguous(s.param.suggest_memory_format()).clone();
    }
    c.weights_changed();
  }
}

std::vector<TrainResult> train_stacked(const MemberCores& cores, const DataCore& data,
                                       const std::vector<std::vector<int64_t>>& idx, const std::vector<TrainConfig>& cfgs) {
  const int64_t n = static_cast<int64_t>(cores.size());
  const auto& c0 = *cores[0];
  const bool bn_train = cfgs[0].bn_train;
  StackedResNet net(cores, /*train=*/true);
  std::vector<std::unique_ptr<BatchMaker>> makers;
  std::vector<LossTensors> losses;
  std::vector<StepLog> logs;
  for (int64_t k = 0; k < n; ++k) {
    // each member's batches from its own generator, exactly as it draws them alone
    makers.push_back(std::make_unique<BatchMaker>(data, idx[k], cfgs[k], /*channels_last=*/false, cores[k]->gen));
    losses.push_back(loss_tensors(cfgs[k].loss, c0.device));
    logs.emplace_back(makers[k]->steps());
  }
  const int64_t steps = makers[0]->steps();
  for (int64_t s = 0; s < steps; ++s) {
    if (exiting()) throw std::runtime_error("the process is exiting");
    std::vector<Batch> b;
    std::vector<torch::Tensor> xs;
    for (auto& m : makers) {
      b.push_back(m->next());
      xs.push_back(b.back().x);
    }
    auto x = torch::stack(xs, 1);  // [B, N, C, H, W]
    x = x.reshape({x.size(0), -1, x.size(3), x.size(4)});
    if (c0.perf.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    zero_grad(net.slots);
    const auto z = net.forward(x, bn_train).to(torch::kFloat);
    torch::Tensor total;
    for (int64_t k = 0; k < n; ++k) {
      const auto zk = z[k];
      const auto lk = training_loss(cfgs[k].loss, losses[k], zk, b[k].y, b[k].y_mix, b[k].lam, b[k].t);
      logs[k].record(lk, zk, b[k]);
      total = total.defined() ? total + lk : lk;
    }
    total.backward();
    sgd_step(net.slots, c0.opt_cfg, cfgs[0].lrs[s]);
  }
  net.write_back(bn_train ? steps : 0);
  std::vector<TrainResult> out;
  for (int64_t k = 0; k < n; ++k) {
    cores[k]->net->train(bn_train);
    out.push_back(logs[k].result(makers[k]->samples()));
  }
  return out;
}

torch::Tensor stacked_logits(StackedResNet& net, const torch::Tensor& x, int64_t members) {
  auto xs = x.repeat({1, members, 1, 1});
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()) xs = xs.contiguous(at::MemoryFormat::ChannelsLast);
  return net.forward(xs, /*bn_train=*/false);
}

}  // namespace btm
