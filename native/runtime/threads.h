// libtorch's intra-op thread count for the whole process.
#pragma once

namespace btm {

// Sets the intra-op thread count used by all CPU work (on the CPU executor thread).
void set_threads(int n);
int threads();
// Applies the count to the calling thread (OpenMP's count is per thread); the CPU executor calls it
// before each job.
void apply_threads();

}  // namespace btm
