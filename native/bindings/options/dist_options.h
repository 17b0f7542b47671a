// initProcessGroup({rank, worldSize, backend?, store?, host?, port?, path?, timeoutMs?, device?})
#pragma once

#include <napi.h>

#include "defaults.h"
#include "distributed/dist_group.h"

namespace btm::options {

DistConfig dist_options(const Napi::Value& v, const std::string& what);

// Model.setProcessGroup(group, {syncBatchNorm?}): how the model trains data-parallel.
struct DataParallelConfig {
  bool sync_batch_norm = defaults::kSyncBatchNorm;
};
DataParallelConfig data_parallel_options(const Napi::Value& v, const std::string& what);

}  // namespace btm::options
