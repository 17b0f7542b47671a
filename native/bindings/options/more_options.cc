#include "bindings/options/more_options.h"

#include "bindings/args.h"

namespace btm::options {

namespace {

std::string shape(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

LowRankOptions low_rank_options(const Napi::Value& v, const std::string& what, ModelCore& m) {
  Napi::Env env = v.Env();
  const auto o = args::object(v, what, false);
  args::only(o, what, {"rank", "layers"});
  LowRankOptions r;
  r.rank = args::integer(o, what, "rank", std::nullopt, 1, 1 << 20);
  const auto layers = o.Get("layers");
  if (!layers.IsUndefined() && !layers.IsNull()) {
    if (!layers.IsArray()) args::type_error(env, what + ".layers must be an array of layer names, got " + args::describe(layers));
    const auto a = layers.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const auto e = a.Get(i);
      if (!e.IsString() || e.As<Napi::String>().Utf8Value().empty())
        args::type_error(env, what + ".layers[" + std::to_string(i) + "] must be a layer name (e.g. 'layer3' or 'fc'), got " +
                                  args::describe(e));
      r.layers.push_back(e.As<Napi::String>().Utf8Value());
    }
    if (r.layers.empty()) args::range_error(env, what + ".layers is empty (leave it out for every trained layer)");
  }
  std::vector<std::string> trained;
  for (const auto& s : m.slots) trained.push_back(s.name);
  const auto chosen = LowRank::eligible(*m.net, r.layers, trained);
  if (chosen.empty()) {
    std::string list;
    for (const auto& l : r.layers) list += (list.empty() ? "'" : ", '") + l + "'";
    args::range_error(env, what + ".layers " + (list.empty() ? "(all)" : "[" + list + "]") +
                               " matches no trained convolution or linear layer of " + m.spec.name +
                               " (setOptimizer's trainable decides which layers train)");
  }
  for (const auto& f : chosen) {
    const int64_t limit = LowRank::rank_limit(f.weight);
    if (r.rank > limit)
      args::range_error(env, what + ".rank " + std::to_string(r.rank) + " is larger than layer " + f.layer + " allows (weight " +
                                 shape(f.weight) + ": at most " + std::to_string(limit) + ")");
  }
  return r;
}

MoreConfig more_options(const Napi::Object& parent, const std::string& parent_what, int64_t steps, int64_t num_classes) {
  MoreConfig cfg;
  const auto v = parent.Get("more");
  if (v.IsUndefined() || v.IsNull()) return cfg;
  const std::string what = parent_what + ".more";
  const auto o = args::object(v, what, false);
  args::only(o, what, {"coefficient", "classWeights", "discrepancy", "generalGrad"});
  // coefficient: one number for every step, or one per step (as lr)
  const auto c = o.Get("coefficient");
  if (c.IsNumber() || c.IsUndefined() || c.IsNull()) {
    cfg.coefficients.assign(steps, static_cast<float>(args::number(o, what, "coefficient", std::nullopt, 0,
                                                                   defaults::kMaxMoreCoefficient)));
  } else {
    cfg.coefficients = args::floats(o, what, "coefficient", steps, 0, defaults::kMaxMoreCoefficient);
  }
  if (o.Get("classWeights").IsUndefined() || o.Get("classWeights").IsNull())
    args::type_error(o.Env(), what + ".classWeights is required (one weight per class, e.g. C * class prior)");
  cfg.class_weights = args::floats(o, what, "classWeights", num_classes, 0, defaults::kMaxMoreClassWeight);
  cfg.discrepancy = args::choice(o, what, "discrepancy", std::string("l2"), {"l2", "kl"}) == "kl" ? Discrepancy::KL : Discrepancy::L2;
  cfg.general_grad = args::boolean(o, what, "generalGrad", true);
  return cfg;
}

}  // namespace btm::options
