// Shared pieces of the N-API layer: per-addon state, handle unwrapping, libtorch-exception
// translation and a Promise-returning worker that runs long work off the JS thread.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "core.h"
#include "executor.h"

namespace btm {

struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference dataset_ctor;
};

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

// Work resolving a Promise: a libuv pool thread hands `work` to the Executor and waits.
// `work` runs off the JS thread and must not touch N-API;
// `to_js` builds the resolved value on the JS thread; `done` runs on the JS thread either way.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::string where, std::function<Result()> work,
                std::function<Napi::Value(Napi::Env, Result&)> to_js, std::function<void()> done)
      : Napi::AsyncWorker(env, "btm-node"),
        deferred_(Napi::Promise::Deferred::New(env)),
        where_(std::move(where)),
        work_(std::move(work)),
        to_js_(std::move(to_js)),
        done_(std::move(done)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      // waits on this libuv thread while the device's executor thread computes
      result_ = Executor::instance().run(work_);
    } catch (const c10::Error& e) {
      SetError(where_ + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(where_ + ": " + e.what());
    }
  }
  void OnOK() override {
    done_();
    Napi::Env env = Env();
    try {
      deferred_.Resolve(to_js_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    done_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string where_;
  std::function<Result()> work_;
  std::function<Napi::Value(Napi::Env, Result&)> to_js_;
  std::function<void()> done_;
  Result result_{};
};

template <typename T, typename NapiArray>
NapiArray copy_to_js(Napi::Env env, const std::vector<T>& v) {
  auto a = NapiArray::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

// Reads `<what>.device` ('cpu' when absent): TypeError for a non-string, RangeError for a bad or
// unavailable device.
torch::Device device_arg(const Napi::Object& o, const std::string& what);

// Dataset handles.
void init_dataset(Napi::Env env, Napi::Object exports, AddonData* data);
// Returns the live DataCore behind a JS Dataset, or throws TypeError naming `what`.
std::shared_ptr<DataCore> unwrap_dataset(const Napi::Value& v, const std::string& what);

// Model handles.
void init_model(Napi::Env env, Napi::Object exports, AddonData* data);
// Returns the live ModelCore behind a JS Model, or throws TypeError naming `what`.
std::shared_ptr<ModelCore> unwrap_model(const Napi::Value& v, const std::string& what);

// Members trained and evaluated together (native/bindings/member_group_binding.cc).
void init_member_group(Napi::Env env, Napi::Object exports);

}  // namespace btm
