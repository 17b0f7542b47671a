// Model.setPerformance({amp?: 'none'|'bf16'|'fp16', channelsLast?, cudnnBenchmark?, lossScale?})
#pragma once

#include <napi.h>

#include "config.h"

namespace btm::options {

PerfConfig perf_options(const Napi::Value& v, const std::string& what);

}  // namespace btm::options
