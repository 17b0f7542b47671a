// A c10d process group: libtorch's own torch.distributed engine (the layer under PyTorch DDP), with
// Gloo for CPU tensors and NCCL for CUDA tensors where libtorch was built with it. No N-API here.
//
// Every call is a collective: it returns when all ranks have made the same call, in the same order,
// so the bindings run them on the executor threads, never on the JS thread. A rank that dies makes the
// others fail (Gloo sees the closed connection at once; a rank that hangs is caught by the timeout).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace btm {

struct DistConfig {
  std::string backend = "gloo";  // "gloo" | "nccl"
  int rank = 0, world_size = 1;
  // Rendezvous: a TCPStore served by rank 0 at host:port (torchrun's MASTER_ADDR / MASTER_PORT), or a
  // FileStore at `path` (every rank must see the same file; it must not exist from an earlier run).
  std::string store = "tcp";
  std::string host = "127.0.0.1";
  int port = 29500;
  std::string path;
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  torch::Device device{torch::kCPU};  // NCCL: the CUDA device of this rank
};

// Which backends this build of the addon can create ("gloo", "nccl").
std::vector<std::string> dist_backends();

class DistGroup {
 public:
  virtual ~DistGroup() = default;
  // Joins the group: blocks until all world_size ranks have joined or the timeout passes.
  static std::shared_ptr<DistGroup> create(const DistConfig& cfg);

  // In place, elementwise sum over the ranks. One call per tensor (Gloo and NCCL reduce one tensor per
  // device); callers flatten what they send.
  virtual void allreduce_sum(torch::Tensor& t) = 0;
  // In place: every rank gets root's values.
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  const DistConfig& config() const { return cfg_; }
  int rank() const { return cfg_.rank; }
  int size() const { return cfg_.world_size; }
  // The device the backend reduces on (CPU for Gloo, the rank's CUDA device for NCCL).
  torch::Device device() const { return cfg_.backend == "nccl" ? cfg_.device : torch::Device(torch::kCPU); }

 protected:
  explicit DistGroup(DistConfig cfg) : cfg_(std::move(cfg)) {}
  DistConfig cfg_;
};

}  // namespace btm
