// Members trained and evaluated together: the N_D fine-tunes of a BTM stage in one native call.
//
//   trainMembers(models: Model[], dataset, indices: Int32Array[], options) -> Promise<TrainResult[]>
//   evaluateMembers(models: Model[], dataset, indices: Int32Array | null, options) -> Promise<EvalResult[]>
//
// Design (measured, issue 9 step 1): on a 2-core CPU one network whose convolutions run grouped over
// the members (weights stacked [N*out, in, k, k], groups = N) was 1.3x-1.5x SLOWER than the members
// one after another: oneDNN's grouped convolution backward took 41 ms per call against 10 x 1.7 ms,
// and the stacked activations (N times larger) fall out of cache. What was faster is running the
// members side by side, each on one core: small ops on 2 OpenMP threads spend much of their time
// synchronising, a member alone on a core does not. So each member is trained by its own
// ModelCore::train (the very code a lone Model runs: same batch building, same draws from its own
// generator, same BatchNorm, same SGD), and the members are spread over the intra-op threads inside one
// OpenMP parallel region; inside that region libtorch, oneDNN and MKL run every op single-threaded.
// Results therefore match the sequential loop to float tolerance (not bit for bit: a kernel that
// splits a reduction over 2 threads sums in another order than one thread does).
//
// On CUDA the picture turns over: a small step is launch-bound and the members on one device would run
// one after another, so there the members train as ONE stacked network (train/stacked_members.h;
// 0.115x of the sequential time for 10 resnet20s in PyTorch on an H100). Option `stacked`: 'auto'
// (default: stacked on CUDA when the members allow it, side by side on the CPU), true (stacked, or a
// RangeError saying why these members cannot be), false (never).
#include <atomic>
#include <unordered_set>

#include "bindings/args.h"
#include "bindings/binding.h"
#include "bindings/options/common.h"
#include "bindings/options/loss_options.h"
#include "bindings/options/train_options.h"
#include "core/model_core.h"
#include "core/onednn_off.h"
#include "runtime/threads.h"
#include "train/batch.h"
#include "train/stacked_members.h"

namespace btm {
namespace {

using Cores = std::vector<std::shared_ptr<ModelCore>>;

// models: a non-empty array of distinct, idle Models of one architecture that fit `dataset`.
Cores members_arg(const Napi::Value& v, const std::string& where, const DataCore& d) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) args::type_error(env, where + ": models must be an array of Model, got " + args::describe(v));
  const auto arr = v.As<Napi::Array>();
  if (arr.Length() == 0) args::range_error(env, where + ": models is empty");
  Cores cores;
  std::unordered_set<ModelCore*> seen;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string what = where + ": models[" + std::to_string(i) + "]";
    auto m = unwrap_model(arr.Get(i), what);
    if (!seen.insert(m.get()).second) args::range_error(env, what + " appears twice");
    if (m->busy) throw Napi::Error::New(env, what + " is busy (a call on it is still running; await it first)");
    if (d.device != m->device)
      throw Napi::Error::New(env, where + ": dataset is on " + d.device.str() + " but " + what + " is on " + m->device.str());
    if (d.c != m->in_channels)
      args::range_error(env, where + ": dataset has " + std::to_string(d.c) + " channel(s), " + what +
                                 " expects inChannels = " + std::to_string(m->in_channels));
    if (m->image_size > 0 && (d.h != m->image_size || d.w != m->image_size))
      args::range_error(env, where + ": dataset images are " + std::to_string(d.h) + "x" + std::to_string(d.w) + ", " +
                                 what + " expects imageSize = " + std::to_string(m->image_size));
    if (d.max_label >= m->num_classes)
      args::range_error(env, where + ": dataset has label " + std::to_string(d.max_label) + ", out of range for " + what +
                                 "'s numClasses = " + std::to_string(m->num_classes));
    if (i > 0 && (m->spec.name != cores[0]->spec.name || m->num_classes != cores[0]->num_classes))
      args::range_error(env, what + " is a " + m->spec.name + " with " + std::to_string(m->num_classes) +
                                 " classes; models[0] is a " + cores[0]->spec.name + " with " +
                                 std::to_string(cores[0]->num_classes) + ": members must share one architecture");
    cores.push_back(std::move(m));
  }
  return cores;
}

// Runs fn(k) for every member k, members spread over the intra-op threads (one member per thread at a
// time, taken in order as threads free up); inside, every libtorch op runs single-threaded. A lone
// member still runs inside the region (the second thread finds no work), so a member's arithmetic does
// not depend on how many others share its call: a resumed stage regroups members and must match.
void for_members(int64_t n, const std::function<void(int64_t)>& fn) {
  apply_threads();
  std::atomic<int64_t> next{0};
  const int64_t workers = threads() > 1 ? std::max<int64_t>(2, std::min<int64_t>(n, threads())) : 1;
  if (workers <= 1) {
    for (int64_t k = 0; k < n; ++k) fn(k);
    return;
  }
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (int64_t k = next++; k < n; k = next++) fn(k);
  });
}

// The `stacked` option: whether these members run as one stacked network (see the top of the file).
// `why_not` says why they cannot ("" when they can).
bool use_stacked(const Napi::Object& o, const std::string& what, const Cores& cores, const std::string& why_not) {
  Napi::Env env = o.Env();
  const auto v = o.Get("stacked");
  bool asked = false;
  if (v.IsBoolean()) {
    asked = v.As<Napi::Boolean>().Value();
    if (!asked) return false;
  } else if (!v.IsUndefined() && !(v.IsString() && v.As<Napi::String>().Utf8Value() == "auto")) {
    args::type_error(env, what + ".stacked must be true, false or 'auto', got " + args::describe(v));
  }
  if (asked && !why_not.empty()) args::range_error(env, what + ".stacked: these models cannot train as one stacked network: " + why_not);
  return asked || (cores[0]->device.is_cuda() && why_not.empty());
}

// Starts the members' work on their device's executor; every member is busy until the Promise settles.
template <typename Result>
Napi::Value run_members(Napi::Env env, const std::string& where, const Cores& cores, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> to_js) {
  for (auto& c : cores) c->busy = true;
  return run_async<Result>(env, cores[0]->device, where, std::move(work), std::move(to_js), [cores] {
    for (auto& c : cores) c->busy = false;
  });
}

Napi::Value TrainMembers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string where = "trainMembers";
  auto data = unwrap_dataset(info[1], where + ": dataset");
  auto cores = members_arg(info[0], where, *data);
  const size_t n = cores.size();
  if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() != n)
    args::type_error(env, where + ": indices must be an array of " + std::to_string(n) + " Int32Array (one per model), got " +
                              args::describe(info[2]));
  std::vector<std::vector<int64_t>> idx(n);
  for (uint32_t k = 0; k < n; ++k)
    idx[k] = args::indices(info[2].As<Napi::Array>().Get(k), where + ": indices[" + std::to_string(k) + "]", data->n);
  // the options of Model.trainEpoch (one parser), except lr: one number for every member and step, or an
  // array with one entry per member (a number, or one number per step of that member)
  const std::string what = where + ": options";
  const auto o = args::object(info[3], what);
  auto keys = options::train_option_keys();
  keys.push_back("stacked");
  args::only(o, what, keys);
  const TrainConfig cfg = options::train_shared_options(o, what, *data, cores[0]->num_classes, cores[0]->in_channels);
  const auto lrv = o.Get("lr");
  if (lrv.IsArray() && lrv.As<Napi::Array>().Length() != n)
    args::range_error(env, what + ".lr must be a number or an array of " + std::to_string(n) + " entries (one per model), got " +
                               std::to_string(lrv.As<Napi::Array>().Length()));
  std::vector<TrainConfig> cfgs(n, cfg);
  for (uint32_t k = 0; k < n; ++k) {
    const int64_t len = static_cast<int64_t>(idx[k].size());
    if (cfg.bn_train) options::check_batches(env, what + ": indices[" + std::to_string(k) + "]", len, cfg.batch_size, cfg.drop_last);
    auto lo = Napi::Object::New(env);
    lo.Set("lr", lrv.IsArray() ? lrv.As<Napi::Array>().Get(k) : lrv);
    cfgs[k].lrs = options::lr_options(lo, lrv.IsArray() ? what + ".lr[" + std::to_string(k) + "]" : what,
                                      options::train_steps(cfg, len));
  }
  const bool stacked = use_stacked(o, what, cores, stacked_train_unsupported(cores, idx, cfgs));
  return run_members<std::vector<TrainResult>>(
      env, where, cores,
      [cores, data, idx = std::move(idx), cfgs = std::move(cfgs), stacked] {
        OneDnnOff onednn_off(cores[0]->onednn_crashes());  // one architecture for all members
        if (stacked) {
          try {
            return train_stacked(cores, *data, idx, cfgs);
          } catch (const c10::Error& e) {
            // N members stacked need N times one model's activation memory
            if (std::string(e.what()).find("out of memory") == std::string::npos) throw;
            throw std::runtime_error("out of memory training " + std::to_string(cores.size()) +
                                     " members as one stacked network (they need that many times one model's activation "
                                     "memory): train fewer together (btm.parallel) or set stacked: false. " +
                                     e.what_without_backtrace());
          }
        }
        std::vector<TrainResult> out(cores.size());
        for_members(static_cast<int64_t>(cores.size()),
                    [&](int64_t k) { out[k] = cores[k]->train(*data, idx[k], cfgs[k]); });
        return out;
      },
      [](Napi::Env env, std::vector<TrainResult>& rs) -> Napi::Value {
        auto arr = Napi::Array::New(env, rs.size());
        for (size_t k = 0; k < rs.size(); ++k) {
          auto out = Napi::Object::New(env);
          out.Set("losses", copy_to_js<float, Napi::Float32Array>(env, rs[k].losses));
          out.Set("accs", copy_to_js<float, Napi::Float32Array>(env, rs[k].accs));
          out.Set("steps", double(rs[k].steps));
          out.Set("samples", double(rs[k].samples));
          arr.Set(uint32_t(k), out);
        }
        return arr;
      });
}

struct MembersEval {
  std::vector<std::vector<int32_t>> preds;
  std::vector<std::vector<float>> logits;
  int64_t num_classes = 0;
};

// One pass over the images: each batch is read and converted once, then every member's forward runs
// on it (members side by side as in training; BatchNorm in eval mode).
Napi::Value EvaluateMembers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string where = "evaluateMembers";
  auto data = unwrap_dataset(info[1], where + ": dataset");
  auto cores = members_arg(info[0], where, *data);
  std::optional<std::vector<int64_t>> idx;
  if (!info[2].IsUndefined() && !info[2].IsNull()) idx = args::indices(info[2], where + ": indices", data->n);
  const std::string what = where + ": options";
  const auto o = args::object(info[3], what);
  args::only(o, what, {"batchSize", "normalize", "logits", "stacked"});
  const int64_t batch_size = args::integer(o, what, "batchSize", defaults::kEvalBatch, 1, defaults::kMaxBatch);
  const auto norm = options::normalize(o, what, cores[0]->in_channels);
  const bool want_logits = args::boolean(o, what, "logits", false);
  const bool stacked = use_stacked(o, what, cores, stacked_unsupported(cores));
  return run_members<MembersEval>(
      env, where, cores,
      [cores, data, idx = std::move(idx), batch_size, norm, want_logits, stacked] {
        torch::NoGradGuard no_grad;
        OneDnnOff onednn_off(cores[0]->onednn_crashes());
        const auto device = cores[0]->device;
        const auto ix = idx ? torch::tensor(*idx, torch::kLong).to(device)
                            : torch::arange(data->n, torch::TensorOptions().dtype(torch::kLong).device(device));
        const int64_t n = ix.size(0), N = static_cast<int64_t>(cores.size());
        for (auto& c : cores) c->net->train(false);
        std::unique_ptr<StackedResNet> stack;
        if (stacked) stack = std::make_unique<StackedResNet>(cores, /*train=*/false);
        std::vector<std::vector<torch::Tensor>> preds(N), logits(N);
        // stacked, a pass holds every member's activations: batch_size / N images keep it at one model's
        const int64_t step = stack ? std::max<int64_t>(1, batch_size / N) : batch_size;
        for (int64_t start = 0; start < n; start += step) {
          const int64_t len = std::min(step, n - start);
          const auto x = to_input(data->images.index_select(0, ix.narrow(0, start, len)), norm, device, cores[0]->perf.channels_last);
          if (stack) {  // one pass of the stacked network for every member
            const auto z = stacked_logits(*stack, x, N);  // [N, B, K]
            const auto p = z.argmax(2).to(torch::kInt).to(torch::kCPU);
            const auto zf = want_logits ? z.to(torch::kFloat).to(torch::kCPU) : torch::Tensor();
            for (int64_t k = 0; k < N; ++k) {
              preds[k].push_back(p[k]);
              if (want_logits) logits[k].push_back(zf[k]);
            }
            continue;
          }
          for_members(N, [&](int64_t k) {
            torch::NoGradGuard no_grad_here;  // grad mode is per thread
            const auto z = cores[k]->logits(x);
            preds[k].push_back(z.argmax(1).to(torch::kInt).to(torch::kCPU));
            if (want_logits) logits[k].push_back(z.to(torch::kFloat).to(torch::kCPU));
          });
        }
        MembersEval r;
        r.num_classes = cores[0]->num_classes;
        r.preds.resize(N);
        r.logits.resize(N);
        for (int64_t k = 0; k < N && n > 0; ++k) {
          const auto p = torch::cat(preds[k]).contiguous();
          r.preds[k].assign(p.data_ptr<int32_t>(), p.data_ptr<int32_t>() + p.numel());
          if (want_logits) {
            const auto t = torch::cat(logits[k]).contiguous();
            r.logits[k].assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
          }
        }
        return r;
      },
      [want_logits](Napi::Env env, MembersEval& r) -> Napi::Value {
        auto arr = Napi::Array::New(env, r.preds.size());
        for (size_t k = 0; k < r.preds.size(); ++k) {
          auto out = Napi::Object::New(env);
          out.Set("preds", copy_to_js<int32_t, Napi::Int32Array>(env, r.preds[k]));
          if (want_logits) out.Set("logits", copy_to_js<float, Napi::Float32Array>(env, r.logits[k]));
          out.Set("numClasses", double(r.num_classes));
          arr.Set(uint32_t(k), out);
        }
        return arr;
      });
}

}  // namespace

void init_member_group(Napi::Env env, Napi::Object exports) {
  exports.Set("trainMembers", Napi::Function::New(env, TrainMembers, "trainMembers"));
  exports.Set("evaluateMembers", Napi::Function::New(env, EvaluateMembers, "evaluateMembers"));
}

}  // namespace btm
