#include "bindings/options/eval_options.h"

#include "bindings/args.h"
#include "bindings/options/common.h"
#include "bindings/options/train_options.h"

namespace btm::options {

EvalConfig eval_options(const Napi::Value& v, const std::string& what, int64_t n, int64_t in_channels) {
  const auto o = args::object(v, what);
  args::only(o, what, {"batchSize", "normalize", "logits", "features", "bnMode", "foldBatchNorm", "path"});
  EvalConfig cfg;
  cfg.batch_size = args::integer(o, what, "batchSize", defaults::kEvalBatch, 1, defaults::kMaxBatch);
  cfg.normalize = normalize(o, what, in_channels);
  cfg.want_logits = args::boolean(o, what, "logits", false);
  cfg.want_features = args::boolean(o, what, "features", false);
  cfg.bn_train = args::choice(o, what, "bnMode", std::string("eval"), {"eval", "train"}) == "train";
  cfg.fold_bn = args::boolean(o, what, "foldBatchNorm", false);
  if (cfg.fold_bn && cfg.bn_train) args::range_error(o.Env(), what + ".foldBatchNorm needs bnMode 'eval'");
  cfg.general_path = args::choice(o, what, "path", std::string("full"), {"full", "general"}) == "general";
  if (cfg.general_path && cfg.fold_bn) args::range_error(o.Env(), what + ".path 'general' does not take foldBatchNorm");
  if (cfg.bn_train) check_batches(o.Env(), what, n, cfg.batch_size, false);
  return cfg;
}

}  // namespace btm::options
