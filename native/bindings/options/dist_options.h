// initProcessGroup({rank, worldSize, backend?, store?, host?, port?, path?, timeoutMs?, device?})
#pragma once

#include <napi.h>

#include "distributed/dist_group.h"

namespace btm::options {

DistConfig dist_options(const Napi::Value& v, const std::string& what);

}  // namespace btm::options
