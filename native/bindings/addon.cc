// Module entry: handle classes plus a few free functions (devices, threads, build info). Exports
// whose names start with '_' are for tests only (as sharp marks them): not part of the API.
#include <torch/version.h>

#include <cmath>
#include <thread>

#include "bindings/args.h"
#include "bindings/binding.h"
#include "bindings/options/loss_options.h"
#include "bindings/options/more_options.h"
#include "compat.h"
#include "distributed/dist_group.h"
#include "defaults.h"
#include "runtime/devices.h"
#include "runtime/threads.h"
#include "models/resnet.h"
#include "train/loss.h"
#include "train/more.h"

#ifndef BTM_TORCH_ORIGIN
#define BTM_TORCH_ORIGIN "unknown"
#endif

namespace btm {
namespace {

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::cuda::is_available());
}

Napi::Value DeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(torch::cuda::device_count()));
}

// setCudaDeterministic(on: boolean): sync; TypeError when `on` is not a boolean.
Napi::Value SetCudaDeterministic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBoolean()) args::type_error(env, "setCudaDeterministic: on must be a boolean, got " + args::describe(info[0]));
  const bool on = info[0].As<Napi::Boolean>();
  guarded(env, "setCudaDeterministic", [&] {
    set_cuda_deterministic(on);
    return 0;
  });
  return env.Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("n", info[0]);
  const int64_t n = args::integer(o, "setNumThreads:", "n", std::nullopt, 1, defaults::kMaxThreads);
  // second argument (the loader's default): n is the most, adapted to other processes' load
  const bool adaptive = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  guarded(env, "setNumThreads", [&] {
    set_threads(static_cast<int>(n), adaptive);
    return 0;
  });
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), threads()); }

Napi::Value ThreadsAdaptive(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), adaptive_threads()); }

Napi::Value ArchNames(const Napi::CallbackInfo& info) {
  const auto& names = arch_names();
  auto a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(uint32_t(i), names[i]);
  return a;
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
  o.Set("torchOrigin", BTM_TORCH_ORIGIN);
  o.Set("hardwareConcurrency", double(std::thread::hardware_concurrency()));
  o.Set("parallelInfo", at::get_parallel_info());
  o.Set("napiVersion", double(NAPI_VERSION));  // the Node-API version the addon was built for
  const auto cuda = compat::cuda_runtime_version(), cudnn = compat::cudnn_version();
  o.Set("cudaVersion", cuda.empty() ? env.Null() : Napi::String::New(env, cuda));
  o.Set("cudnnVersion", cudnn.empty() ? env.Null() : Napi::String::New(env, cudnn));
  o.Set("cudaAvailable", torch::cuda::is_available());
  o.Set("deviceCount", double(torch::cuda::device_count()));
  auto backends = Napi::Array::New(env);
  for (const auto& b : dist_backends()) backends.Set(backends.Length(), b);
  o.Set("distBackends", backends);  // c10d backends compiled in (distributed/dist_group.h)
  return o;
}

// The batch the test-only loss hooks compute on: labels (labelsA, labelsB?, lam?) or, for loss 'bce',
// multi-hot `targets` [B*C] in [0, 1]; checked before libtorch sees them.
struct GivenBatch {
  torch::Tensor ya, yb, target;  // target undefined with labels; ya / yb empty with targets
  double lam = 1.0;
};
GivenBatch given_batch(const Napi::Object& o, const std::string& what, const LossConfig& loss, int64_t B, int64_t C) {
  Napi::Env env = o.Env();
  const bool has_targets = !o.Get("targets").IsUndefined();
  if (has_targets && loss.kind != LossKind::BCE) args::range_error(env, what + ".targets is for loss 'bce'");
  const auto targets = has_targets ? args::floats(o, what, "targets", B * C, 0, 1) : std::vector<float>();
  std::vector<int64_t> ya, yb;
  if (!has_targets) {
    ya = args::indices(o.Get("labelsA"), what + ".labelsA", C);
    yb = o.Get("labelsB").IsUndefined() ? ya : args::indices(o.Get("labelsB"), what + ".labelsB", C);
    if (static_cast<int64_t>(ya.size()) != B || static_cast<int64_t>(yb.size()) != B)
      args::range_error(env, what + ": labelsA and labelsB need " + std::to_string(B) + " entries");
  }
  GivenBatch b;
  b.lam = args::number(o, what, "lam", 1.0, 0, 1);
  b.ya = torch::tensor(ya, torch::kLong);
  b.yb = torch::tensor(yb, torch::kLong);
  if (has_targets) b.target = torch::tensor(targets).view({B, C});
  return b;
}

// _computeLoss({logits: Float32Array [B*C], numClasses, labelsA: Int32Array, labelsB?, lam?, logitOffsets?,
// labelSmoothing?, classWeights?, loss?: 'ce'|'gml'|'bce', gmlPower?}) -> number: the training loss on given
// logits, for checking against a reference (test only). Loss 'bce' takes `targets` (Float32Array [B*C], each
// in [0, 1]: a multi-label batch's targets, mixed or not) in place of the labels.
Napi::Value ComputeLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string what = "computeLoss: options";
  const auto o = args::object(info[0], what, false);
  args::only(o, what, {"logits", "numClasses", "labelsA", "labelsB", "targets", "lam", "logitOffsets", "labelSmoothing",
                       "classWeights", "loss", "gmlPower"});
  const int64_t C = args::integer(o, what, "numClasses", std::nullopt, 1, defaults::kMaxClasses);
  const auto logits = args::floats(o, what, "logits", -1, -1e30, 1e30);
  if (logits.empty() || logits.size() % C != 0)
    args::range_error(env, what + ".logits length " + std::to_string(logits.size()) + " is not a positive multiple of numClasses");
  const int64_t B = static_cast<int64_t>(logits.size()) / C;
  const auto loss = options::loss_options(o, what, C);
  if (!o.Get("targets").IsUndefined() && (!o.Get("labelsA").IsUndefined() || !o.Get("labelsB").IsUndefined()))
    args::range_error(env, what + ": give targets or labelsA/labelsB, not both");
  const auto b = given_batch(o, what, loss, B, C);
  return guarded(env, "computeLoss", [&] {
    auto z = torch::tensor(logits).view({B, C});
    return Napi::Number::New(env, training_loss(loss, loss_tensors(loss, torch::kCPU), z, b.ya, b.yb, b.lam, b.target).item<double>());
  });
}

// _computeMoreLoss({full, general: Float32Array [B*C], numClasses, labelsA, labelsB?, lam?, loss options...,
// more: {coefficient, classWeights, discrepancy?}}) -> {base, discrepancy, total}: a MORE training step's
// loss on given logits of the two paths (test only). Loss 'bce' takes `targets` (Float32Array [B*C] in
// [0, 1], a multi-label batch) in place of the labels.
Napi::Value ComputeMoreLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string what = "computeMoreLoss: options";
  const auto o = args::object(info[0], what, false);
  args::only(o, what, {"full", "general", "numClasses", "labelsA", "labelsB", "targets", "lam", "logitOffsets", "labelSmoothing",
                       "classWeights", "loss", "gmlPower", "more"});
  const int64_t C = args::integer(o, what, "numClasses", std::nullopt, 1, defaults::kMaxClasses);
  const auto full = args::floats(o, what, "full", -1, -1e30, 1e30);
  const auto general = args::floats(o, what, "general", int64_t(full.size()), -1e30, 1e30);
  if (full.empty() || full.size() % C != 0)
    args::range_error(env, what + ".full length " + std::to_string(full.size()) + " is not a positive multiple of numClasses");
  const int64_t B = static_cast<int64_t>(full.size()) / C;
  const auto loss = options::loss_options(o, what, C);
  const auto b = given_batch(o, what, loss, B, C);
  const auto more = options::more_options(o, what, 1, C);
  if (!more.on()) args::type_error(env, what + ".more is required");
  return guarded(env, "computeMoreLoss", [&] {
    auto zf = torch::tensor(full).view({B, C}), zg = torch::tensor(general).view({B, C});
    const double base = training_loss(loss, loss_tensors(loss, torch::kCPU), zf, b.ya, b.yb, b.lam, b.target).item<double>();
    const double d = more_discrepancy(more.discrepancy, zf, zg, b.ya, b.yb, b.lam, torch::tensor(more.class_weights), b.target).item<double>();
    auto r = Napi::Object::New(env);
    r.Set("base", base);
    r.Set("discrepancy", d);
    r.Set("total", base + double(more.coefficients[0]) * d);
    return r;
  });
}

// _defaults() -> the native defaults and bounds (defaults.h), for the test that checks src/config.ts
// agrees with them (test only).
Napi::Value Defaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  namespace d = defaults;
  auto range = [&](double def, double min, double max) {
    auto r = Napi::Object::New(env);
    if (!std::isnan(def)) r.Set("default", def);
    r.Set("min", min);
    r.Set("max", max);
    return r;
  };
  const double none = std::nan("");
  auto o = Napi::Object::New(env);
  o.Set("momentum", range(d::kMomentum, 0, d::kMaxMomentum));
  o.Set("weightDecay", range(d::kWeightDecay, 0, d::kMaxWeightDecay));
  o.Set("nesterov", d::kNesterov);
  o.Set("lr", range(none, 0, d::kMaxLr));
  o.Set("trainBatchSize", range(double(d::kTrainBatch), 1, double(d::kMaxBatch)));
  o.Set("evalBatchSize", range(double(d::kEvalBatch), 1, double(d::kMaxBatch)));
  o.Set("mixupAlpha", range(0, 0, d::kMaxMixupAlpha));
  o.Set("gmlPower", range(d::kGmlPower, d::kMinGmlPower, d::kMaxGmlPower));
  o.Set("logitOffset", range(0, -d::kMaxLogitOffset, d::kMaxLogitOffset));
  o.Set("labelSmoothing", range(0, 0, d::kMaxLabelSmoothing));
  o.Set("moreCoefficient", range(none, 0, d::kMaxMoreCoefficient));
  o.Set("cropPadding", range(0, 0, double(d::kMaxImageSize)));
  o.Set("seed", range(0, 0, d::kMaxSeed));
  o.Set("threads", range(none, 1, double(d::kMaxThreads)));
  o.Set("numClasses", range(none, 1, double(d::kMaxClasses)));
  o.Set("inChannels", range(double(d::kInChannels), 1, double(d::kMaxInChannels)));
  o.Set("imageSize", range(0, 0, double(d::kMaxImageSize)));
  o.Set("lossScale", d::kLossScale);
  o.Set("lossScaleGrowthInterval", double(d::kLossScaleGrowthInterval));
  o.Set("distTimeoutMs", range(double(d::kDistTimeoutMs), 100, double(d::kMaxDistTimeoutMs)));
  o.Set("worldSize", range(none, 1, double(d::kMaxWorldSize)));
  o.Set("syncBatchNorm", d::kSyncBatchNorm);
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  data->completions = Completions::create(env);
  init_model(env, exports, data);
  init_dataset(env, exports, data);
  init_member_group(env, exports);
  init_process_group(env, exports, data);
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable, "cudaAvailable"));
  exports.Set("deviceCount", Napi::Function::New(env, DeviceCount, "deviceCount"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("setCudaDeterministic", Napi::Function::New(env, SetCudaDeterministic, "setCudaDeterministic"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("threadsAdaptive", Napi::Function::New(env, ThreadsAdaptive, "threadsAdaptive"));
  exports.Set("archNames", Napi::Function::New(env, ArchNames, "archNames"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("_computeLoss", Napi::Function::New(env, ComputeLoss, "_computeLoss"));
  exports.Set("_computeMoreLoss", Napi::Function::New(env, ComputeMoreLoss, "_computeMoreLoss"));
  exports.Set("_defaults", Napi::Function::New(env, Defaults, "_defaults"));
  return exports;
}

}  // namespace btm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return btm::Init(env, exports); }

NODE_API_MODULE(btm_node, InitAddon)
