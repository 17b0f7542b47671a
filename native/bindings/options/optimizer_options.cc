#include "bindings/options/optimizer_options.h"

#include "bindings/args.h"

namespace btm::options {

OptimizerConfig optimizer_options(const Napi::Value& v, const std::string& what) {
  const auto o = args::object(v, what);
  args::only(o, what, {"momentum", "weightDecay", "nesterov", "trainable", "lws"});
  OptimizerConfig cfg;
  cfg.momentum = args::number(o, what, "momentum", defaults::kMomentum, 0, defaults::kMaxMomentum);
  cfg.weight_decay = args::number(o, what, "weightDecay", defaults::kWeightDecay, 0, defaults::kMaxWeightDecay);
  cfg.nesterov = args::boolean(o, what, "nesterov", defaults::kNesterov);
  const auto t = args::choice(o, what, "trainable", std::string("all"), {"all", "classifier", "backbone", "peft", "last-block"});
  cfg.trainable = t == "all"          ? Trainable::All
                  : t == "classifier" ? Trainable::Classifier
                  : t == "peft"       ? Trainable::Peft
                  : t == "last-block" ? Trainable::LastBlock
                                      : Trainable::Backbone;
  cfg.lws = args::boolean(o, what, "lws", false);
  if (cfg.nesterov && cfg.momentum <= 0) args::range_error(o.Env(), what + ".nesterov needs momentum > 0");
  return cfg;
}

}  // namespace btm::options
