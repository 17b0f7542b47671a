// libtorch's intra-op thread count for the whole process, fixed or adapted to the other work on the
// cores (see threads.cc).
#pragma once

namespace btm {

// Sets the intra-op thread count used by all CPU work (on the CPU executor thread). `adaptive`: `n` is
// the most; before each CPU job the count drops by the cores other processes keep busy (Linux).
void set_threads(int n, bool adaptive = false);
// The count the next CPU job runs with.
int threads();
bool adaptive_threads();
// Applies the count to the calling thread (OpenMP's count is per thread); the CPU executor calls it
// before each job and training calls it before each step, which is when an adaptive count is revised
// (at most every 0.5 s). Inside a parallel region it does nothing.
void apply_threads();

}  // namespace btm
