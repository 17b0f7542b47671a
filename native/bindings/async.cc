#include "bindings/async.h"

#include "runtime/executor.h"

namespace btm {

namespace {
// Heap holders handed to N-API callbacks; each callback owns and deletes its own.
using Holder = std::shared_ptr<Completions>;
}  // namespace

std::shared_ptr<Completions> Completions::create(Napi::Env env) {
  std::shared_ptr<Completions> self(new Completions());
  napi_value name;
  NAPI_THROW_IF_FAILED(env, napi_create_string_utf8(env, "btm-node", NAPI_AUTO_LENGTH, &name), nullptr);
  auto* finalize_holder = new Holder(self);
  napi_status st = napi_create_threadsafe_function(
      env, nullptr, nullptr, name, 0 /* unlimited queue: the executor never blocks */, 1, finalize_holder,
      [](napi_env, void* data, void*) {
        auto* h = static_cast<Holder*>(data);
        (*h)->close();
        delete h;
      },
      self.get(), call_js, &self->tsfn_);
  if (st != napi_ok) {
    delete finalize_holder;
    NAPI_THROW_IF_FAILED(env, st, nullptr);
  }
  // Idle, the channel must not keep the process alive; start() refs it while work is pending.
  napi_unref_threadsafe_function(env, self->tsfn_);
  // Registered after the tsfn, so it runs before the tsfn's own teardown: no executor thread uses the
  // tsfn once the environment starts to go away.
  auto* hook_holder = new Holder(self);
  napi_add_env_cleanup_hook(
      env,
      [](void* data) {
        auto* h = static_cast<Holder*>(data);
        (*h)->close();
        delete h;
      },
      hook_holder);
  return self;
}

void Completions::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  tsfn_ = nullptr;
}

void Completions::start(Napi::Env env, const torch::Device& device, std::unique_ptr<Job> job) {
  if (pending_++ == 0 && tsfn_) napi_ref_threadsafe_function(env, tsfn_);
  auto self = shared_from_this();
  Job* raw = job.release();
  Executor::of(device).post([self, raw] {
    raw->execute();
    self->finish(raw);
  });
}

void Completions::finish(Job* job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || napi_call_threadsafe_function(tsfn_, job, napi_tsfn_nonblocking) != napi_ok) delete job;
}

void Completions::call_js(napi_env env, napi_value, void* context, void* data) {
  std::unique_ptr<Job> job(static_cast<Job*>(data));
  if (env == nullptr) return;  // the environment is being torn down: drop the result
  auto* self = static_cast<Completions*>(context);
  if (--self->pending_ == 0 && self->tsfn_) napi_unref_threadsafe_function(env, self->tsfn_);
  try {
    job->settle(Napi::Env(env));
  } catch (...) {
    // settle() reports its own failures through the Promise; nothing may escape into N-API.
  }
}

}  // namespace btm
