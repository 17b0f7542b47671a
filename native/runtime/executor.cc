#include "runtime/executor.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <thread>
#include <vector>

#include "runtime/threads.h"

namespace btm {

namespace {
std::atomic<bool> g_exiting{false};
std::mutex g_registry_mutex;
std::map<int, Executor*>* g_executors = nullptr;
}  // namespace

// atexit: stop starting jobs, and let a running one stop at its next step before static destructors
// (libtorch's among them) run under it. Registered after libtorch was loaded, so it runs first.
void stop_executors() {
  g_exiting = true;
  std::vector<Executor*> all;
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    for (auto& [k, e] : *g_executors) all.push_back(e);
  }
  for (auto* e : all) e->wait_idle();
}

bool exiting() { return g_exiting.load(std::memory_order_relaxed); }

Executor& Executor::of(const torch::Device& device) {
  const int key = device.is_cpu() ? -1 : (device.has_index() ? device.index() : 0);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  // Leaked on purpose: the threads run until the process exits (destroying a joinable std::thread
  // would terminate the process).
  if (!g_executors) {
    g_executors = new std::map<int, Executor*>();
    std::atexit(stop_executors);
  }
  auto& e = (*g_executors)[key];
  if (!e) e = new Executor(device.is_cpu());
  return *e;
}

Executor::Executor(bool cpu) : cpu_(cpu) {
  std::thread([this] { loop(); }).detach();
}

void Executor::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void Executor::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return !jobs_.empty() && !exiting(); });
      job = std::move(jobs_.front());
      jobs_.pop_front();
      running_ = true;
    }
    if (cpu_) apply_threads();
    job();
    job = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = false;
    }
    idle_.notify_all();
  }
}

void Executor::wait_idle() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait_for(lock, std::chrono::seconds(30), [this] { return !running_; });
}

}  // namespace btm
