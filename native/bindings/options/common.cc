#include "bindings/options/common.h"

#include "bindings/args.h"
#include "defaults.h"
#include "runtime/devices.h"

namespace btm::options {

torch::Device device(const Napi::Object& o, const std::string& what) {
  const auto v = o.Get("device");
  if (v.IsUndefined()) return torch::Device(torch::kCPU);
  if (!v.IsString()) args::type_error(o.Env(), what + ".device must be a string, got " + args::describe(v));
  torch::Device device(torch::kCPU);
  std::string err;
  if (!parse_device(v.As<Napi::String>().Utf8Value(), &device, &err)) args::range_error(o.Env(), what + ".device: " + err);
  return device;
}

uint64_t seed(const Napi::Object& o, const std::string& what) {
  return static_cast<uint64_t>(args::integer(o, what, "seed", 0, 0, static_cast<int64_t>(defaults::kMaxSeed)));
}

Normalize normalize(const Napi::Object& o, const std::string& what, int64_t channels) {
  const auto v = o.Get("normalize");
  if (v.IsUndefined() || v.IsNull()) return {};
  const auto n = args::object(v, what + ".normalize", false);
  args::only(n, what + ".normalize", {"mean", "std"});
  Normalize out;
  out.mean = args::floats(n, what + ".normalize", "mean", channels, -1e6, 1e6);
  out.std = args::floats(n, what + ".normalize", "std", channels, 1e-12, 1e6);
  if (out.mean.empty() || out.std.empty())
    args::type_error(o.Env(), what + ".normalize needs both mean and std (one number per channel)");
  return out;
}

}  // namespace btm::options
