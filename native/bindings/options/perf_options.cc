#include "bindings/options/perf_options.h"

#include "bindings/args.h"

namespace btm::options {

PerfConfig perf_options(const Napi::Value& v, const std::string& what) {
  const auto o = args::object(v, what);
  args::only(o, what, {"amp", "channelsLast", "cudnnBenchmark", "lossScale"});
  PerfConfig cfg;
  const auto amp = args::choice(o, what, "amp", std::string("none"), {"none", "bf16", "fp16"});
  cfg.amp = amp == "none" ? Amp::None : amp == "bf16" ? Amp::BF16 : Amp::FP16;
  cfg.channels_last = args::boolean(o, what, "channelsLast", false);
  cfg.cudnn_benchmark = args::boolean(o, what, "cudnnBenchmark", false);
  cfg.loss_scale = args::number(o, what, "lossScale", defaults::kLossScale, 1.0, 1e30);
  return cfg;
}

}  // namespace btm::options
