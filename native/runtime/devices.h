// Device names: 'cpu', 'cuda' or 'cuda:N'.
#pragma once

#include <torch/torch.h>

#include <string>

namespace btm {

// Parses and checks availability; false with a message in *err when the name is bad or unavailable.
bool parse_device(const std::string& s, torch::Device* out, std::string* err);

// CUDA numerics for the whole process (as torch.backends.cudnn.deterministic = on, allow_tf32 = !on):
// on, cuDNN picks deterministic algorithms, convolutions run in exact fp32 (no TF32) and autotuning is
// off, so two runs of the same work give the same bits; off restores libtorch's defaults (TF32 allowed).
// No effect on CPU work.
void set_cuda_deterministic(bool on);

}  // namespace btm
