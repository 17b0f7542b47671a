// Shared pieces of the N-API layer: per-addon state, handle unwrapping, libtorch-exception
// translation and Promise-returning long work run on the device's executor thread.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bindings/async.h"
#include "core/data_core.h"

namespace btm {

struct ModelCore;
class DistGroup;

// Runs `fn` and rethrows any C++/libtorch exception as a JS Error carrying libtorch's message.
template <typename F>
auto guarded(const Napi::Env& env, const std::string& where, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, where + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, where + ": " + e.what());
  }
}

struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference dataset_ctor;
  Napi::FunctionReference process_group_ctor;
  std::shared_ptr<Completions> completions;
};

// Starts `work` on `device`'s executor and returns its Promise.
template <typename Result>
Napi::Promise run_async(Napi::Env env, const torch::Device& device, std::string where, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> to_js, std::function<void()> done) {
  auto job = std::make_unique<PromiseJob<Result>>(env, std::move(where), std::move(work), std::move(to_js), std::move(done));
  auto promise = job->promise();
  env.GetInstanceData<AddonData>()->completions->start(env, device, std::move(job));
  return promise;
}

template <typename T, typename NapiArray>
NapiArray copy_to_js(Napi::Env env, const std::vector<T>& v) {
  auto a = NapiArray::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

// Dataset handles.
void init_dataset(Napi::Env env, Napi::Object exports, AddonData* data);
// Returns the live DataCore behind a JS Dataset, or throws TypeError naming `what`.
std::shared_ptr<DataCore> unwrap_dataset(const Napi::Value& v, const std::string& what);

// Model handles.
void init_model(Napi::Env env, Napi::Object exports, AddonData* data);
// Returns the live ModelCore behind a JS Model, or throws TypeError naming `what`.
std::shared_ptr<ModelCore> unwrap_model(const Napi::Value& v, const std::string& what);

// c10d process groups (bindings/dist_binding.cc).
void init_process_group(Napi::Env env, Napi::Object exports, AddonData* data);
// Returns the live DistGroup behind a JS ProcessGroup, or throws TypeError naming `what`.
std::shared_ptr<DistGroup> unwrap_process_group(const Napi::Value& v, const std::string& what);

// Members trained and evaluated together (bindings/member_group_binding.cc).
void init_member_group(Napi::Env env, Napi::Object exports);

}  // namespace btm
