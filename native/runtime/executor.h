// Executor threads: all of the addon's long libtorch work runs on them, never on the JS thread and
// never on libuv's pool.
//
// One thread per device (cpu, cuda:0, cuda:1, ...), created on first use, so a CUDA model and a CPU
// model in one process do not queue behind each other, while the models of one device run one call
// at a time (on a CPU they compete for the same cores anyway).
//
// The CPU executor owns the process's one OpenMP intra-op team. With OpenMP every thread that runs a
// parallel region owns its own team of workers, and with more managed threads than cores libgomp stops
// spinning, so every parallel region pays for futex wake-ups: on 2 cores that made a tiny training
// call ~10x slower than the same step run from a single thread. Funnelling all CPU work through one
// thread keeps a single warm team (see set_threads in core.cc).
//
// The executors are process-wide and know nothing of N-API: a job is plain C++; the bindings hand its
// result back to the JS thread of the environment (main thread or worker) that asked for it.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace btm {

void stop_executors();

class Executor {
 public:
  // The executor of `device` (cpu, or cuda:N with N defaulting to the current device).
  static Executor& of(const torch::Device& device);

  // Queues `job` (which must not throw) to run on this executor's thread.
  void post(std::function<void()> job);

 private:
  explicit Executor(bool cpu);
  void loop();
  // At exit: waits (bounded) until the running job, told to stop by exiting(), has returned.
  void wait_idle();
  friend void stop_executors();

  const bool cpu_;
  std::mutex mutex_;
  std::condition_variable ready_, idle_;
  std::deque<std::function<void()>> jobs_;
  bool running_ = false;
};

// True once the process has started to exit (atexit): long loops stop at the next step so that no
// executor is inside libtorch while libtorch's static objects are destroyed.
bool exiting();

}  // namespace btm
