#include "executor.h"

#include <thread>

namespace btm {

Executor& Executor::instance() {
  // Leaked on purpose: the thread runs until the process exits (destroying a joinable std::thread
  // would terminate the process).
  static Executor* executor = new Executor();
  return *executor;
}

Executor::Executor() {
  std::thread([this] { loop(); }).detach();
}

void Executor::push(std::function<void()> job) {
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
      ready_.wait(lock, [this] { return !jobs_.empty(); });
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace btm
