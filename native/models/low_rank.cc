#include "models/low_rank.h"

#include <cmath>
#include <stdexcept>

namespace btm {
namespace nn = torch::nn;

namespace {

torch::Tensor& weight_member(nn::Module& m) {
  if (auto* c = m.as<nn::Conv2d>()) return c->weight;
  if (auto* l = m.as<nn::Linear>()) return l->weight;
  throw std::logic_error("low-rank factors on a layer that is neither Conv2d nor Linear");
}

bool has_prefix(const std::string& path, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes) {
    // "layer3" matches "layer3" and "layer3.0.conv1", not "layer30"
    if (path == p || (path.size() > p.size() && path.compare(0, p.size(), p) == 0 && path[p.size()] == '.')) return true;
  }
  return false;
}

}  // namespace

torch::Tensor lora_a_init(int64_t rank, int64_t fan, torch::Generator& gen, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan));
  auto a = (torch::rand({rank, fan}, gen, torch::TensorOptions().dtype(torch::kFloat)) * (2 * bound) - bound).to(device);
  a.set_requires_grad(true);
  return a;
}

int64_t LowRank::rank_limit(const torch::Tensor& weight) {
  const int64_t out = weight.size(0);
  return std::min(out, weight.numel() / out);
}

std::vector<LowRank::Factor> LowRank::eligible(torch::nn::Module& net, const std::vector<std::string>& prefixes,
                                              const std::vector<std::string>& trained) {
  std::vector<Factor> out;
  for (const auto& item : net.named_modules("", /*include_self=*/false)) {
    auto& m = *item.value();
    if (!m.as<nn::Conv2d>() && !m.as<nn::Linear>()) continue;
    if (!has_prefix(item.key(), prefixes)) continue;
    const std::string name = item.key() + ".weight";
    bool is_trained = false;
    for (const auto& t : trained) is_trained = is_trained || t == name;
    if (is_trained) out.push_back({item.key(), item.value(), weight_member(m), {}, {}});
  }
  return out;
}

LowRank::LowRank(torch::nn::Module& net, const std::vector<std::string>& prefixes,
                 const std::vector<std::string>& trained, int64_t rank, torch::Generator& gen)
    : rank_(rank), factors_(eligible(net, prefixes, trained)) {
  torch::NoGradGuard no_grad;
  for (auto& f : factors_) {
    const int64_t out = f.weight.size(0), fan = f.weight.numel() / out;
    if (rank > rank_limit(f.weight)) throw std::logic_error("low-rank: rank above the limit of " + f.layer);
    f.a = lora_a_init(rank, fan, gen, f.weight.device());
    f.b = torch::zeros({out, rank}, torch::TensorOptions().dtype(torch::kFloat).device(f.weight.device()));
    f.b.set_requires_grad(true);
  }
}

bool LowRank::is_factor(const std::string& name) {
  auto ends = [&](const std::string& tail) {
    return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends(".lowrank_A") || ends(".lowrank_B");
}

std::vector<std::pair<std::string, torch::Tensor>> LowRank::parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& f : factors_) {
    out.emplace_back(f.layer + ".lowrank_A", f.a);
    out.emplace_back(f.layer + ".lowrank_B", f.b);
  }
  return out;
}

torch::Tensor LowRank::delta(const Factor& f) {
  return torch::mm(f.b, f.a).view(f.weight.sizes()).contiguous(f.weight.suggest_memory_format());
}

torch::Tensor LowRank::merged(const std::string& name, const torch::Tensor& t) const {
  for (const auto& f : factors_) {
    if (name == f.layer + ".weight") {
      torch::NoGradGuard no_grad;
      return t + delta(f);
    }
  }
  return t;
}

void LowRank::merge() {
  torch::NoGradGuard no_grad;
  for (const auto& f : factors_) f.weight.add_(delta(f));
}

void LowRank::reset() {
  torch::NoGradGuard no_grad;
  for (const auto& f : factors_) {
    f.b.zero_();
    f.a.mutable_grad() = torch::Tensor();
    f.b.mutable_grad() = torch::Tensor();
  }
}

int64_t LowRank::bytes() const {
  int64_t n = 0;
  for (const auto& f : factors_) n += (f.a.numel() + f.b.numel()) * 2 * int64_t(sizeof(float));  // + gradients
  return n;
}

LowRank::FullPath::FullPath(const LowRank* lr) : lr_(lr) {
  if (!lr_) return;
  for (const auto& f : lr_->factors_) weight_member(*f.module) = f.weight + delta(f);
}

LowRank::FullPath::~FullPath() {
  if (!lr_) return;
  for (const auto& f : lr_->factors_) weight_member(*f.module) = f.weight;
}

}  // namespace btm
