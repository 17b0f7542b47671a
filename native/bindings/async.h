// Long work returning a Promise, run on the device's executor thread (runtime/executor.h).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace btm {

// Long work returning a Promise. The work runs on the device's Executor thread; its result comes
// back to this environment's JS thread through one thread-safe function per environment, which
// settles the Promise. No libuv pool thread waits for the executor.
//
// Environments (the main thread, each worker_thread) have their own Completions, so a result goes
// back only to the environment that asked for it. When an environment is torn down (a worker ends)
// with work still running, the channel is closed first and the late result is dropped on the
// executor thread (it holds only C++ objects).
class Completions : public std::enable_shared_from_this<Completions> {
 public:
  // One job: `execute` runs on the executor (no N-API there), `settle` on the JS thread.
  struct Job {
    virtual ~Job() = default;
    virtual void execute() = 0;
    virtual void settle(Napi::Env env) = 0;
  };

  static std::shared_ptr<Completions> create(Napi::Env env);

  // JS thread: runs `job` on `device`'s executor; the job settles its own Promise.
  void start(Napi::Env env, const torch::Device& device, std::unique_ptr<Job> job);

 private:
  Completions() = default;
  void finish(Job* job);  // executor thread
  static void call_js(napi_env env, napi_value, void* context, void* data);
  void close();

  std::mutex mutex_;
  bool closed_ = false;
  napi_threadsafe_function tsfn_ = nullptr;
  size_t pending_ = 0;  // JS thread only: the tsfn keeps the event loop alive while > 0
};

// Work resolving a Promise: `work` runs on the executor and must not touch N-API; `to_js` builds the
// resolved value on the JS thread; `done` runs on the JS thread before the Promise settles, either way.
// C++ and libtorch exceptions become a rejected Promise with "<where>: <message>".
template <typename Result>
class PromiseJob : public Completions::Job {
 public:
  PromiseJob(Napi::Env env, std::string where, std::function<Result()> work,
             std::function<Napi::Value(Napi::Env, Result&)> to_js, std::function<void()> done)
      : deferred_(Napi::Promise::Deferred::New(env)),
        where_(std::move(where)),
        work_(std::move(work)),
        to_js_(std::move(to_js)),
        done_(std::move(done)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void execute() override {
    try {
      result_ = work_();
    } catch (const c10::Error& e) {
      error_ = where_ + ": " + e.what_without_backtrace();
    } catch (const std::exception& e) {
      error_ = where_ + ": " + e.what();
    } catch (...) {
      error_ = where_ + ": unknown error";
    }
    failed_ = !error_.empty();
  }

  void settle(Napi::Env env) override {
    done_();
    if (failed_) {
      deferred_.Reject(Napi::Error::New(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(to_js_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, where_ + ": " + e.what()).Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string where_;
  std::function<Result()> work_;
  std::function<Napi::Value(Napi::Env, Result&)> to_js_;
  std::function<void()> done_;
  Result result_{};
  std::string error_;
  bool failed_ = false;
};

// A Promise already rejected with Error(message).
inline Napi::Promise rejected(Napi::Env env, const std::string& message) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(Napi::Error::New(env, message).Value());
  return d.Promise();
}

}  // namespace btm
