#include "bindings/options/peft_options.h"

#include <cmath>

#include "bindings/args.h"
#include "models/vit.h"

namespace btm::options {

PeftConfig peft_options(const Napi::Value& v, const std::string& what, const ModelCore& m) {
  Napi::Env env = v.Env();
  const auto o = args::object(v, what, false);
  args::only(o, what, {"modules", "rank", "bottleneck", "head", "cosineScale"});
  PeftConfig cfg;
  const auto& names = peft_module_names();
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "'" : ", '") + n + "'";
  const auto mods = o.Get("modules");
  if (!mods.IsArray()) args::type_error(env, what + ".modules must be an array of module names (" + known + "), got " + args::describe(mods));
  const auto a = mods.As<Napi::Array>();
  const unsigned allowed = peft_modules_for(m.spec.family);
  const char* family = m.spec.family == Family::ViT ? "a Vision Transformer" : "a ResNet";
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const auto e = a.Get(i);
    const std::string el = what + ".modules[" + std::to_string(i) + "]";
    if (!e.IsString()) args::type_error(env, el + " must be a module name (" + known + "), got " + args::describe(e));
    const auto s = e.As<Napi::String>().Utf8Value();
    unsigned bit = 0;
    for (size_t k = 0; k < names.size(); ++k)
      if (names[k] == s) bit = 1u << k;
    if (!bit) args::range_error(env, el + " is '" + s + "', not a module (known: " + known + ")");
    if (!(allowed & bit)) {
      std::string ok;
      for (size_t k = 0; k < names.size(); ++k)
        if (allowed & (1u << k)) ok += (ok.empty() ? "'" : ", '") + names[k] + "'";
      args::range_error(env, el + " '" + s + "' does not apply to " + m.spec.name + " (" + family + " has no layers for it; its modules: " + ok + ")");
    }
    if (cfg.modules & bit) args::range_error(env, el + " '" + s + "' is listed twice");
    cfg.modules |= bit;
  }
  if (o.Has("rank") && !(cfg.modules & kPeftLoRA)) args::range_error(env, what + ".rank is for 'lora', which is not among the modules");
  if (o.Has("bottleneck") && !(cfg.modules & kPeftAdaptFormer))
    args::range_error(env, what + ".bottleneck is for 'adaptformer', which is not among the modules");
  if (m.spec.family == Family::ViT) {
    ViTConfig vc;
    find_vit(m.spec.name, &vc);
    cfg.rank = args::integer(o, what, "rank", 8, 1, vc.hidden_dim);
    const double ratio = double(m.num_classes) / double(2 * vc.num_layers);
    const int64_t auto_width = int64_t(1) << std::max(0, int(std::floor(std::log2(ratio))));
    cfg.bottleneck = args::integer(o, what, "bottleneck", std::min(auto_width, vc.hidden_dim), 1, vc.hidden_dim);
  }
  const auto head = args::choice(o, what, "head", std::string("linear"), {"linear", "cosine"});
  if (o.Has("cosineScale") && head != "cosine") args::range_error(env, what + ".cosineScale is for head 'cosine'");
  if (head == "cosine") cfg.cosine_scale = args::number(o, what, "cosineScale", 25.0, 1e-3, 1e4);
  return cfg;
}

}  // namespace btm::options
