// Module entry: handle classes plus a few free functions (devices, threads, build info, the loss).
#include <torch/version.h>

#include <thread>

#include "args.h"
#include "binding.h"

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

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("n", info[0]);
  const int64_t n = args::integer(o, "setNumThreads:", "n", std::nullopt, 1, 1024);
  guarded(env, "setNumThreads", [&] {
    set_threads(static_cast<int>(n));
    return 0;
  });
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), threads()); }

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
  return o;
}

// computeLoss({logits: Float32Array [B*C], numClasses, labelsA: Int32Array, labelsB?, lam?, logitOffsets?,
// labelSmoothing?, loss?: 'ce'|'gml', gmlPower?}) -> number: the training loss on given logits, for checking against a reference.
Napi::Value ComputeLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string what = "computeLoss: options";
  const auto o = args::object(info[0], what, false);
  args::only(o, what, {"logits", "numClasses", "labelsA", "labelsB", "lam", "logitOffsets", "labelSmoothing", "loss", "gmlPower"});
  const int64_t C = args::integer(o, what, "numClasses", std::nullopt, 1, 1 << 20);
  const auto logits = args::floats(o, what, "logits", -1, -1e30, 1e30);
  if (logits.empty() || logits.size() % C != 0)
    args::range_error(env, what + ".logits length " + std::to_string(logits.size()) + " is not a positive multiple of numClasses");
  const int64_t B = static_cast<int64_t>(logits.size()) / C;
  const auto ya = args::indices(o.Get("labelsA"), what + ".labelsA", C);
  const auto yb = o.Get("labelsB").IsUndefined() ? ya : args::indices(o.Get("labelsB"), what + ".labelsB", C);
  if (static_cast<int64_t>(ya.size()) != B || static_cast<int64_t>(yb.size()) != B)
    args::range_error(env, what + ": labelsA and labelsB need " + std::to_string(B) + " entries");
  const double lam = args::number(o, what, "lam", 1.0, 0, 1);
  const auto offsets = args::floats(o, what, "logitOffsets", C, -1e4, 1e4);
  const auto smoothing = args::floats(o, what, "labelSmoothing", C, 0, 1);
  const bool gml = args::choice(o, what, "loss", std::string("ce"), {"ce", "gml"}) == "gml";
  const double power = args::number(o, what, "gmlPower", 1.0, 0.1, 10);
  return guarded(env, "computeLoss", [&] {
    auto z = torch::tensor(logits).view({B, C});
    auto ta = torch::tensor(ya, torch::kLong), tb = torch::tensor(yb, torch::kLong);
    auto off = offsets.empty() ? torch::Tensor() : torch::tensor(offsets);
    auto eps = smoothing.empty() ? torch::Tensor() : torch::tensor(smoothing);
    const auto loss = gml ? gml_loss(z, ta, off, power) : soft_target_loss(z, ta, tb, lam, off, eps);
    return Napi::Number::New(env, loss.item<double>());
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  init_model(env, exports, data);
  init_dataset(env, exports, data);
  init_member_group(env, exports);
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable, "cudaAvailable"));
  exports.Set("deviceCount", Napi::Function::New(env, DeviceCount, "deviceCount"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("archNames", Napi::Function::New(env, ArchNames, "archNames"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("computeLoss", Napi::Function::New(env, ComputeLoss, "computeLoss"));
  return exports;
}

}  // namespace btm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return btm::Init(env, exports); }

NODE_API_MODULE(btm_node, InitAddon)
