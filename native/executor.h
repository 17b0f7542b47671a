// One long-lived thread runs all of the addon's asynchronous libtorch work.
//
// libuv's pool has several threads and a Promise's work may land on any of them; with OpenMP each
// of those threads would own its own team of intra-op workers, and with more managed threads than
// cores libgomp stops spinning, so every parallel region pays for futex wake-ups. On 2 cores that
// made a tiny training call ~10x slower than the same step run from a single thread. Funnelling the
// work through one thread keeps a single warm team. It also serialises the work of different models
// (on a CPU they compete for the same cores anyway; on several GPUs they no longer overlap).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>

namespace btm {

class Executor {
 public:
  // The one executor of the process; created on first use, lives until exit.
  static Executor& instance();

  // Runs `fn` on the executor's thread and waits for it; exceptions propagate to the caller.
  template <typename R>
  R run(std::function<R()> fn) {
    std::packaged_task<R()> task(std::move(fn));
    auto result = task.get_future();
    push([&task] { task(); });
    return result.get();
  }

 private:
  Executor();
  void push(std::function<void()> job);
  void loop();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
};

}  // namespace btm
