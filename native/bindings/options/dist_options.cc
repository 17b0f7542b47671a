#include "bindings/options/dist_options.h"

#include "bindings/args.h"
#include "bindings/options/common.h"
#include "defaults.h"

namespace btm::options {

DistConfig dist_options(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  const auto o = args::object(v, what, false);
  args::only(o, what, {"rank", "worldSize", "backend", "store", "host", "port", "path", "timeoutMs", "device"});
  DistConfig cfg;
  cfg.world_size = static_cast<int>(args::integer(o, what, "worldSize", std::nullopt, 1, defaults::kMaxWorldSize));
  cfg.rank = static_cast<int>(args::integer(o, what, "rank", std::nullopt, 0, defaults::kMaxWorldSize));
  if (cfg.rank >= cfg.world_size)
    args::range_error(env, what + ".rank " + std::to_string(cfg.rank) + " is out of range for worldSize " +
                               std::to_string(cfg.world_size) + " (ranks are 0.." + std::to_string(cfg.world_size - 1) + ")");
  cfg.device = device(o, what);
  cfg.backend = args::choice(o, what, "backend", std::string(cfg.device.is_cuda() ? "nccl" : "gloo"), {"gloo", "nccl"});
  if (cfg.backend == "nccl" && !cfg.device.is_cuda())
    args::range_error(env, what + ".backend 'nccl' needs a CUDA device (device: 'cuda:N'); use 'gloo' on the CPU");
  cfg.store = args::choice(o, what, "store", std::string("tcp"), {"tcp", "file"});
  const auto text = [&](const char* key, const std::string& def) {
    const auto x = o.Get(key);
    if (x.IsUndefined() || x.IsNull()) return def;
    if (!x.IsString() || x.As<Napi::String>().Utf8Value().empty())
      args::type_error(env, what + "." + key + " must be a non-empty string, got " + args::describe(x));
    return x.As<Napi::String>().Utf8Value();
  };
  cfg.host = text("host", "127.0.0.1");
  cfg.port = static_cast<int>(args::integer(o, what, "port", 29500, 1, 65535));
  cfg.path = text("path", "");
  if (cfg.store == "file" && cfg.path.empty()) args::range_error(env, what + ".path is required with store 'file'");
  cfg.timeout = std::chrono::milliseconds(
      args::integer(o, what, "timeoutMs", defaults::kDistTimeoutMs, 100, defaults::kMaxDistTimeoutMs));
  return cfg;
}

DataParallelConfig data_parallel_options(const Napi::Value& v, const std::string& what) {
  const auto o = args::object(v, what);
  args::only(o, what, {"syncBatchNorm"});
  DataParallelConfig cfg;
  cfg.sync_batch_norm = args::boolean(o, what, "syncBatchNorm", defaults::kSyncBatchNorm);
  return cfg;
}

}  // namespace btm::options
