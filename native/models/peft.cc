#include "models/peft.h"

#include <stdexcept>

#include "models/low_rank.h"
#include "models/resnet.h"
#include "models/vit.h"

namespace btm {
namespace nn = torch::nn;

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

torch::Tensor trained_tensor(torch::Tensor t) {
  t.set_requires_grad(true);
  return t;
}

}  // namespace

const std::vector<std::string>& peft_module_names() {
  static const std::vector<std::string> names = {"bitfit", "norm", "lora", "ssf", "adaptformer", "adapter"};
  return names;
}

unsigned peft_modules_for(Family family) {
  return family == Family::ViT ? (kPeftBitFit | kPeftNorm | kPeftLoRA | kPeftSSF | kPeftAdaptFormer)
                               : (kPeftBitFit | kPeftNorm | kPeftSSF | kPeftAdapter);
}

Peft::Target& Peft::target(const std::string& name, torch::Tensor* member) {
  for (auto& t : targets_)
    if (t.name == name) return t;
  Target t;
  t.name = name;
  t.member = member;
  t.base = *member;
  targets_.push_back(t);
  return targets_.back();
}

void Peft::add_ssf(const std::string& op, torch::Tensor* weight, torch::Tensor* bias, int64_t channels) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(weight->device());
  auto scale = trained_tensor(torch::ones({channels}, opts));
  auto shift = trained_tensor(torch::zeros({channels}, opts));
  target(op + (bias ? ".weight" : ""), weight).scale = scale;
  if (bias) {
    auto& b = target(op + ".bias", bias);
    b.scale = scale;
    b.shift = shift;
  }
  extras_.emplace_back(op + ".ssf_scale", scale);
  extras_.emplace_back(op + ".ssf_shift", shift);
}

Peft::Peft(NetworkImpl& net, Family family, const PeftConfig& cfg, torch::Generator& gen) : cfg_(cfg) {
  torch::NoGradGuard no_grad;
  targets_.reserve(1024);
  const auto device = net.parameters().front().device();
  // the trunk's parameters that train
  for (const auto& item : net.named_modules("", /*include_self=*/false)) {
    auto& m = *item.value();
    const bool norm = m.as<nn::LayerNorm>() || m.as<nn::BatchNorm2d>();
    for (const auto& p : m.named_parameters(/*recurse=*/false)) {
      const std::string name = item.key() + "." + p.key();
      const bool is_bias = ends_with(p.key(), "bias");
      if (((cfg.modules & kPeftBitFit) && is_bias) || ((cfg.modules & kPeftNorm) && norm)) trained_.push_back(name);
    }
  }
  if (family == Family::ViT) {
    auto& vit = dynamic_cast<ViTImpl&>(net);
    const int64_t dim = vit.cfg.hidden_dim;
    const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
    if (cfg.modules & kPeftSSF) add_ssf("conv_proj", &vit.conv_proj->weight, &vit.conv_proj->bias, dim);
    for (size_t i = 0; i < vit.encoder->blocks.size(); ++i) {
      auto& b = vit.encoder->blocks[i];
      const std::string p = "encoder.layers.encoder_layer_" + std::to_string(i) + ".";
      if (cfg.modules & kPeftLoRA) {
        auto& t = target(p + "self_attention.in_proj_weight", &b->self_attention->in_proj_weight);
        t.lora_aq = lora_a_init(cfg.rank, dim, gen, device);
        t.lora_bq = trained_tensor(torch::zeros({dim, cfg.rank}, opts));
        t.lora_av = lora_a_init(cfg.rank, dim, gen, device);
        t.lora_bv = trained_tensor(torch::zeros({dim, cfg.rank}, opts));
        const std::string n = p + "self_attention.in_proj_weight.lora_";
        extras_.emplace_back(n + "A_q", t.lora_aq);
        extras_.emplace_back(n + "B_q", t.lora_bq);
        extras_.emplace_back(n + "A_v", t.lora_av);
        extras_.emplace_back(n + "B_v", t.lora_bv);
      }
      if (cfg.modules & kPeftSSF) {
        add_ssf(p + "ln_1", &b->ln_1->weight, &b->ln_1->bias, dim);
        // in_proj is not a module: its op name is the weight's without the suffix
        auto scale = trained_tensor(torch::ones({3 * dim}, opts));
        auto shift = trained_tensor(torch::zeros({3 * dim}, opts));
        target(p + "self_attention.in_proj_weight", &b->self_attention->in_proj_weight).scale = scale;
        auto& bias = target(p + "self_attention.in_proj_bias", &b->self_attention->in_proj_bias);
        bias.scale = scale;
        bias.shift = shift;
        extras_.emplace_back(p + "self_attention.in_proj.ssf_scale", scale);
        extras_.emplace_back(p + "self_attention.in_proj.ssf_shift", shift);
        add_ssf(p + "self_attention.out_proj", &b->self_attention->out_proj->weight, &b->self_attention->out_proj->bias, dim);
        add_ssf(p + "ln_2", &b->ln_2->weight, &b->ln_2->bias, dim);
        add_ssf(p + "mlp.0", &b->mlp->fc1->weight, &b->mlp->fc1->bias, vit.cfg.mlp_dim);
        add_ssf(p + "mlp.3", &b->mlp->fc2->weight, &b->mlp->fc2->bias, dim);
      }
      if (cfg.modules & kPeftAdaptFormer) {
        AdaptFormer a(dim, cfg.bottleneck, vit.cfg.ln_eps, gen);
        a->to(device);
        b->adaptformer = b->register_module("adaptformer", a);
      }
    }
    if (cfg.modules & kPeftSSF) add_ssf("encoder.ln", &vit.encoder->ln->weight, &vit.encoder->ln->bias, dim);
  } else {
    auto& resnet = dynamic_cast<ResNetImpl&>(net);
    if (cfg.modules & kPeftSSF) {
      for (const auto& item : net.named_modules("", /*include_self=*/false)) {
        if (auto* bn = item.value()->as<nn::BatchNorm2d>())
          add_ssf(item.key(), &bn->weight, &bn->bias, bn->options.num_features());
      }
    }
    if (cfg.modules & kPeftAdapter) {
      for (size_t s = 0; s < resnet.layers.size(); ++s) {
        for (size_t i = 0; i < resnet.layers[s]->size(); ++i) {
          auto b = std::dynamic_pointer_cast<BlockImpl>(resnet.layers[s]->ptr(i));
          ResidualAdapter a(b->out_channels);
          a->to(device);
          b->adapter = b->register_module("adapter", a);
        }
      }
    }
  }
  // the added modules' parameters train
  for (const auto& p : net.named_parameters())
    if (p.key().find(".adaptformer.") != std::string::npos || p.key().find(".adapter.") != std::string::npos)
      trained_.push_back(p.key());
}

bool Peft::trains_base(const std::string& name) const {
  for (const auto& t : trained_)
    if (t == name) return true;
  return false;
}

std::vector<std::pair<std::string, torch::Tensor>> Peft::parameters() const { return extras_; }

bool Peft::is_extra(const std::string& name) {
  for (const char* tail : {".lora_A_q", ".lora_B_q", ".lora_A_v", ".lora_B_v", ".ssf_scale", ".ssf_shift"})
    if (ends_with(name, tail)) return true;
  return false;
}

torch::Tensor Peft::Target::value() const {
  auto w = base;
  if (lora_bq.defined()) {
    const int64_t r = lora_aq.size(0), d = base.size(1);
    const auto dq = torch::mm(lora_bq, lora_aq), dv = torch::mm(lora_bv, lora_av);
    w = w + torch::cat({dq, torch::zeros({d, d}, dq.options()), dv}) * (1.0 / double(r));
  }
  if (scale.defined()) {
    std::vector<int64_t> shape(w.dim(), 1);
    shape[0] = -1;
    w = w * scale.view(shape);
  }
  if (shift.defined()) w = w + shift;
  return w.contiguous(base.suggest_memory_format());
}

torch::Tensor Peft::effective(const std::string& name, const torch::Tensor& t) const {
  for (const auto& x : targets_) {
    if (x.name == name) {
      torch::NoGradGuard no_grad;
      return x.value();
    }
  }
  return t;
}

void Peft::reset() {
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : extras_) {
    if (ends_with(name, ".ssf_scale")) t.fill_(1);
    else if (ends_with(name, ".lora_A_q") || ends_with(name, ".lora_A_v")) {}  // A is kept, as LoRA's init
    else t.zero_();
    t.mutable_grad() = torch::Tensor();
  }
}

int64_t Peft::bytes() const {
  int64_t n = 0;
  for (const auto& [name, t] : extras_) n += t.numel() * 2 * int64_t(sizeof(float));  // + gradients
  return n;
}

Peft::Scope::Scope(const Peft* p) : p_(p) {
  if (!p_) return;
  for (const auto& t : p_->targets_) *t.member = t.value();
}

Peft::Scope::~Scope() {
  if (!p_) return;
  for (const auto& t : p_->targets_) *t.member = t.base;
}

}  // namespace btm
