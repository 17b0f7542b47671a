#include "runtime/threads.h"

#include <torch/torch.h>

#include <atomic>

namespace btm {

namespace {
std::atomic<int> g_threads{0};
}  // namespace

void set_threads(int n) {
  g_threads = n;
  // With OpenMP every thread that runs a parallel region owns a team of workers, and once more
  // threads are managed than there are cores libgomp stops spinning and every region pays for futex
  // wake-ups (a small training step ran 5x slower). The intra-op threads therefore belong to the CPU
  // Executor thread that runs all long CPU work (apply_threads); the calling JS thread keeps its short,
  // synchronous work (model init, state-dict copies) single-threaded so it never owns a team.
  at::set_num_threads(1);
}

int threads() { return g_threads > 0 ? g_threads.load() : at::get_num_threads(); }

void apply_threads() {
  const int n = g_threads;
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

}  // namespace btm
