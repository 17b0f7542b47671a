#include "bindings/options/train_options.h"

#include <algorithm>

#include "bindings/args.h"
#include "bindings/options/common.h"
#include "bindings/options/loss_options.h"
#include "bindings/options/more_options.h"

namespace btm::options {

void check_batches(const Napi::Env& env, const std::string& what, int64_t n, int64_t bs, bool drop_last) {
  if (bs == 1) args::range_error(env, what + ".batchSize must be > 1 with bnMode 'train' (BatchNorm needs 2+ samples)");
  if (!drop_last && n % bs == 1)
    args::range_error(env, what + ": the last batch would hold 1 sample (" + std::to_string(n) + " indices, batchSize " +
                               std::to_string(bs) + "); BatchNorm in train mode needs 2+: set dropLast or change batchSize");
}

const std::vector<std::string>& train_option_keys() {
  static const std::vector<std::string> keys = {"lr", "batchSize", "dropLast", "cropPadding", "hflip", "normalize",
                                                "mixupAlpha", "loss", "logitOffsets", "labelSmoothing", "classWeights",
                                                "gmlPower", "bnMode"};
  return keys;
}

TrainConfig train_shared_options(const Napi::Object& o, const std::string& what, const DataCore& data,
                                 int64_t num_classes, int64_t in_channels) {
  Napi::Env env = o.Env();
  TrainConfig cfg;
  cfg.batch_size = args::integer(o, what, "batchSize", defaults::kTrainBatch, 1, defaults::kMaxBatch);
  cfg.drop_last = args::boolean(o, what, "dropLast", false);
  cfg.crop_padding = args::integer(o, what, "cropPadding", 0, 0, std::min(data.h, data.w));
  cfg.hflip = args::boolean(o, what, "hflip", false);
  cfg.normalize = normalize(o, what, in_channels);
  cfg.mixup_alpha = args::number(o, what, "mixupAlpha", 0, 0, defaults::kMaxMixupAlpha);
  cfg.loss = loss_options(o, what, num_classes);
  check_loss_data(env, what, cfg.loss, data, num_classes);
  if (cfg.loss.kind == LossKind::GML && cfg.mixup_alpha > 0)
    args::range_error(env, what + ": loss 'gml' does not take mixup (mixupAlpha must be 0)");
  cfg.bn_train = args::choice(o, what, "bnMode", std::string("train"), {"train", "eval"}) == "train";
  if (cfg.bn_train && cfg.batch_size == 1)
    args::range_error(env, what + ".batchSize must be > 1 with bnMode 'train' (BatchNorm needs 2+ samples)");
  return cfg;
}

int64_t train_steps(const TrainConfig& cfg, int64_t n) {
  return cfg.drop_last ? n / cfg.batch_size : (n + cfg.batch_size - 1) / cfg.batch_size;
}

std::vector<float> lr_options(const Napi::Object& o, const std::string& what, int64_t steps) {
  const auto v = o.Get("lr");
  if (v.IsNumber() || v.IsUndefined() || v.IsNull())
    return std::vector<float>(steps, static_cast<float>(args::number(o, what, "lr", std::nullopt, 0, defaults::kMaxLr)));
  return args::floats(o, what, "lr", steps, 0, defaults::kMaxLr);
}

// globalBatch: every global batch of `n` (the full ones and a short last one) must give each of the
// group's ranks a part of `need` samples or more.
void check_parts(const Napi::Env& env, const std::string& what, const TrainConfig& cfg, int64_t n, int64_t need) {
  std::vector<int64_t> lens;
  if (n >= cfg.batch_size) lens.push_back(cfg.batch_size);
  if (!cfg.drop_last && n % cfg.batch_size != 0) lens.push_back(n % cfg.batch_size);
  for (const int64_t L : lens) {
    const int64_t smallest = L / cfg.parts;
    if (smallest >= need) continue;
    args::range_error(env, what + ".globalBatch: a global batch of " + std::to_string(L) + " sample(s) (" + std::to_string(n) +
                               " indices, batchSize " + std::to_string(cfg.batch_size) + ") gives a rank a part of " +
                               std::to_string(smallest) + " on " + std::to_string(cfg.parts) + " ranks; each part needs " +
                               std::to_string(need) + "+" +
                               (need > 1 ? " (BatchNorm in train mode per rank, without syncBatchNorm)" : "") +
                               ": leave the short batch out (dropLast) or change batchSize");
  }
}

TrainConfig train_options(const Napi::Value& v, const std::string& what, const DataCore& data, int64_t n,
                          int64_t num_classes, int64_t in_channels, const GroupInfo& group) {
  const auto o = args::object(v, what);
  auto keys = train_option_keys();
  keys.push_back("more");         // a lone model's options: MORE's term (not in trainMembers), the
  keys.push_back("gradWeights");  // data-parallel weights of its gradients, and global batches
  keys.push_back("globalBatch");
  args::only(o, what, keys);
  TrainConfig cfg = train_shared_options(o, what, data, num_classes, in_channels);
  const int64_t steps = train_steps(cfg, n);
  cfg.lrs = lr_options(o, what, steps);
  cfg.more = more_options(o, what, steps, num_classes);
  cfg.grad_weights = args::floats(o, what, "gradWeights", steps, 0, 1);
  if (cfg.bn_train) check_batches(v.Env(), what, n, cfg.batch_size, cfg.drop_last);
  if (args::boolean(o, what, "globalBatch", false)) {
    if (group.world == 0)
      args::range_error(v.Env(), what + ".globalBatch needs a process group: call setProcessGroup(group) first");
    if (!cfg.grad_weights.empty())
      args::range_error(v.Env(), what + ": gradWeights and globalBatch exclude each other (with global batches each rank's "
                                        "weight is its part's share of the batch)");
    cfg.part = group.rank;
    cfg.parts = group.world;
    if (cfg.parts > 1) check_parts(v.Env(), what, cfg, n, cfg.bn_train && !group.sync_bn ? 2 : 1);
  }
  return cfg;
}

}  // namespace btm::options
