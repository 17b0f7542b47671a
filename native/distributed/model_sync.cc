#include "distributed/model_sync.h"

#include <algorithm>

namespace btm {

namespace {

constexpr int64_t kBucketBytes = 16 << 20;  // as DDP's default bucket order of magnitude (25 MiB there)

// Consecutive runs of tensors of one dtype and device, each at most kBucketBytes (a bigger tensor alone).
std::vector<std::vector<torch::Tensor>> buckets(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::vector<torch::Tensor>> out;
  int64_t bytes = 0;
  for (const auto& t : tensors) {
    const int64_t b = t.numel() * int64_t(t.element_size());
    const bool fits = !out.empty() && out.back().front().scalar_type() == t.scalar_type() &&
                      out.back().front().device() == t.device() && bytes + b <= kBucketBytes;
    if (!fits) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(t);
    bytes += b;
  }
  return out;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& ts, const torch::Device& to) {
  std::vector<torch::Tensor> flat;
  flat.reserve(ts.size());
  for (const auto& t : ts) flat.push_back(t.reshape({-1}));
  return torch::cat(flat).to(to).contiguous();
}

void unflatten_into(const torch::Tensor& flat, const std::vector<torch::Tensor>& ts) {
  int64_t offset = 0;
  for (const auto& t : ts) {
    const int64_t n = t.numel();
    // copy_ handles any memory format (channels-last weights included)
    auto dst = const_cast<torch::Tensor&>(t);
    dst.copy_(flat.narrow(0, offset, n).view(t.sizes()).to(t.device()));
    offset += n;
  }
}

}  // namespace

void allreduce_tensors(DistGroup& group, const std::vector<torch::Tensor>& tensors, double scale) {
  torch::NoGradGuard no_grad;
  for (const auto& bucket : buckets(tensors)) {
    auto flat = flatten(bucket, group.device());
    if (scale != 1.0) flat.mul_(scale);
    group.allreduce_sum(flat);
    unflatten_into(flat, bucket);
  }
}

void broadcast_tensors(DistGroup& group, const std::vector<torch::Tensor>& tensors, int root) {
  torch::NoGradGuard no_grad;
  for (const auto& bucket : buckets(tensors)) {
    auto flat = flatten(bucket, group.device());
    group.broadcast(flat, root);
    unflatten_into(flat, bucket);
  }
}

void sync_gradients(DistGroup& group, std::vector<ParamSlot>& slots, double weight) {
  std::vector<torch::Tensor> grads;
  grads.reserve(slots.size());
  for (auto& s : slots) {
    if (!s.param.grad().defined()) s.param.mutable_grad() = torch::zeros_like(s.param);
    grads.push_back(s.param.grad());
  }
  allreduce_tensors(group, grads, weight);
}

}  // namespace btm
