#include "distributed/sync_batch_norm.h"

#include <cstdint>
#include <vector>

namespace btm {

namespace {

thread_local SyncBatchNormScope* t_scope = nullptr;

std::vector<int64_t> reduce_dims(const torch::Tensor& x) {
  std::vector<int64_t> d{0};
  for (int64_t i = 2; i < x.dim(); ++i) d.push_back(i);
  return d;
}

// [C] -> [1, C, 1, ...], to broadcast over x
torch::Tensor per_channel(const torch::Tensor& v, const torch::Tensor& x) {
  std::vector<int64_t> s(x.dim(), 1);
  s[1] = x.size(1);
  return v.view(s);
}

// y = (x - mean) / sqrt(var + eps) * weight + bias with the global statistics (constants of the graph
// here: their gradient terms are in backward), and the backward of the global normalisation.
class SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& mean, const torch::Tensor& var, double eps,
                               int64_t group, double share, double count) {
    const auto invstd = (var + eps).rsqrt();
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["group"] = group;
    ctx->saved_data["share"] = share;
    ctx->saved_data["count"] = count;
    // eval-mode batch_norm with the global statistics: libtorch's fused kernel
    return at::batch_norm(x, weight, bias, mean, var, /*training=*/false, 0.0, eps, /*cudnn_enabled=*/true);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto& mean = saved[2];
    const auto& invstd = saved[3];
    auto* group = reinterpret_cast<DistGroup*>(static_cast<intptr_t>(ctx->saved_data["group"].toInt()));
    const double share = ctx->saved_data["share"].toDouble(), count = ctx->saved_data["count"].toDouble();
    const auto dims = reduce_dims(x);
    const auto dy = grads[0].to(torch::kFloat);
    const auto xmu = x.to(torch::kFloat) - per_channel(mean, x);
    const auto sum_dy = dy.sum(dims);
    const auto sum_dy_xmu = (dy * xmu).sum(dims);
    torch::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) {
      // the gradient of the global batch's mean loss: sum_r w_r * (the rank's sums), over w_r N (each
      // rank's gradients are weighted by w_r afterwards in the gradient all-reduce)
      const int64_t C = x.size(1);
      auto payload = torch::cat({sum_dy, sum_dy_xmu}).to(torch::kDouble).mul_(share).to(group->device()).contiguous();
      group->allreduce_sum(payload);
      payload = payload.to(x.device()).div_(share * count).to(torch::kFloat);
      const auto mean_dy = payload.narrow(0, 0, C), mean_dy_xmu = payload.narrow(0, C, C);
      const auto scale = weight.defined() ? invstd * weight : invstd;
      gx = (dy - per_channel(mean_dy, x) - xmu * per_channel(mean_dy_xmu * invstd * invstd, x)) * per_channel(scale, x);
      gx = gx.to(x.scalar_type());
    }
    if (weight.defined() && ctx->needs_input_grad(1)) gw = (sum_dy_xmu * invstd).to(weight.scalar_type());
    if (ctx->needs_input_grad(2)) gb = sum_dy.to(weight.defined() ? weight.scalar_type() : torch::kFloat);
    return {gx, gw, gb, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

SyncBatchNormScope::SyncBatchNormScope(DistGroup* group) : group_(group), prev_(t_scope) {
  if (group_) t_scope = this;
}

SyncBatchNormScope::~SyncBatchNormScope() {
  if (group_) t_scope = prev_;
}

SyncBatchNormScope* SyncBatchNormScope::current() { return t_scope; }

torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  auto* scope = SyncBatchNormScope::current();
  if (!scope || !bn.is_training() || !bn.options.track_running_stats()) return bn.forward(x);
  // as BatchNormImplBase::forward: the step count, and the running average's factor
  double factor = bn.options.momentum() ? *bn.options.momentum() : 0.0;
  if (bn.num_batches_tracked.defined()) {
    bn.num_batches_tracked += 1;
    if (!bn.options.momentum()) factor = 1.0 / bn.num_batches_tracked.item<double>();
  }
  auto& group = *scope->group();
  const int64_t C = x.size(1);
  torch::Tensor mean, var;
  double count = 0;
  {
    torch::NoGradGuard no_grad;
    // this rank's mean and (biased) variance per channel, then sums over the ranks in float64:
    // n * mean and n * (var + mean^2), from which the global ones lose no precision
    torch::Tensor lvar, lmean;
    std::tie(lvar, lmean) = at::var_mean(x.detach().to(torch::kFloat), reduce_dims(x), /*unbiased=*/false, /*keepdim=*/false);
    const double n = double(x.numel() / C);
    const auto m = lmean.to(torch::kDouble), v = lvar.to(torch::kDouble);
    auto payload = torch::cat({m * n, (v + m * m) * n, torch::full({1}, n, m.options())}).to(group.device()).contiguous();
    group.allreduce_sum(payload);
    payload = payload.to(torch::kCPU);
    count = payload[2 * C].item<double>();
    const auto gmean = payload.narrow(0, 0, C) / count;
    const auto gvar = (payload.narrow(0, C, C) / count - gmean * gmean).clamp_min(0.0);
    if (factor != 0.0) {
      auto& rm = bn.running_mean;
      auto& rv = bn.running_var;
      const auto unbiased = gvar * (count / (count - 1.0));
      rm.copy_((rm.to(torch::kCPU, torch::kDouble) * (1.0 - factor) + gmean * factor).to(rm.options()));
      rv.copy_((rv.to(torch::kCPU, torch::kDouble) * (1.0 - factor) + unbiased * factor).to(rv.options()));
    }
    mean = gmean.to(x.device(), torch::kFloat);
    var = gvar.to(x.device(), torch::kFloat);
  }
  return SyncBatchNormFn::apply(x, bn.weight, bn.bias, mean, var, bn.options.eps(),
                                static_cast<int64_t>(reinterpret_cast<intptr_t>(&group)), scope->share(), count);
}

}  // namespace btm
