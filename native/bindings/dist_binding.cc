// ProcessGroup: the JS surface of a c10d process group (distributed/dist_group.h). Every method is a
// collective that all ranks call in the same order; each returns a Promise and runs on an executor
// thread (the group's device, or the model's for the model methods), never on the JS thread. A
// failed collective (a rank died or timed out) rejects with a message naming this rank.
#include "bindings/args.h"
#include "bindings/binding.h"
#include "bindings/options/dist_options.h"
#include "core/model_core.h"
#include "distributed/dist_group.h"
#include "distributed/model_sync.h"

namespace btm {

namespace {

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessGroup",
                       {InstanceMethod<&ProcessGroupWrap::Allreduce>("allreduce"),
                        InstanceMethod<&ProcessGroupWrap::Barrier>("barrier"),
                        InstanceMethod<&ProcessGroupWrap::BroadcastModel>("broadcastModel"),
                        InstanceMethod<&ProcessGroupWrap::AverageBuffers>("averageBuffers"),
                        InstanceMethod<&ProcessGroupWrap::Dispose>("dispose"),
                        InstanceAccessor<&ProcessGroupWrap::Rank>("rank"),
                        InstanceAccessor<&ProcessGroupWrap::WorldSize>("worldSize"),
                        InstanceAccessor<&ProcessGroupWrap::Backend>("backend"),
                        InstanceAccessor<&ProcessGroupWrap::Disposed>("disposed")});
  }

  // Made by initProcessGroup only (an External holding the joined group).
  explicit ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "ProcessGroup: use initProcessGroup(options) to join a group");
    group_ = *info[0].As<Napi::External<std::shared_ptr<DistGroup>>>().Data();
  }

  const std::shared_ptr<DistGroup>& group() const { return group_; }

 private:
  DistGroup& live(const Napi::Env& env, const char* method) {
    if (!group_) throw Napi::Error::New(env, std::string("ProcessGroup.") + method + ": the group has been disposed");
    return *group_;
  }

  // allreduce(arrays: Float32Array[], options?: {scale?: number}) -> Promise<Float32Array[]>
  //   async; the elementwise sum over the ranks of scale * array (new arrays); the ranks must pass
  //   arrays of the same lengths. TypeError/RangeError on bad arguments; rejects when a rank fails.
  Napi::Value Allreduce(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env, "allreduce");
    const std::string what = "ProcessGroup.allreduce";
    if (!info[0].IsArray()) args::type_error(env, what + ": arrays must be an array of Float32Array, got " + args::describe(info[0]));
    const auto arr = info[0].As<Napi::Array>();
    std::vector<torch::Tensor> ts;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const Napi::Value v = arr.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        args::type_error(env, what + ": arrays[" + std::to_string(i) + "] must be a Float32Array, got " + args::describe(v));
      const auto f = v.As<Napi::Float32Array>();
      auto t = torch::empty({int64_t(f.ElementLength())}, torch::kFloat);
      if (t.numel()) std::memcpy(t.data_ptr<float>(), f.Data(), t.numel() * sizeof(float));
      ts.push_back(t);
    }
    const auto o = args::object(info[1], what + ": options");
    args::only(o, what + ": options", {"scale"});
    const double scale = args::number(o, what + ": options", "scale", 1.0, -1e30, 1e30);
    auto group = group_;
    return run_async<std::vector<torch::Tensor>>(
        env, group->device(), what,
        [group, ts, scale] {
          allreduce_tensors(*group, ts, scale);
          return ts;
        },
        [](Napi::Env env, std::vector<torch::Tensor>& out) -> Napi::Value {
          auto a = Napi::Array::New(env, out.size());
          for (size_t i = 0; i < out.size(); ++i) {
            auto f = Napi::Float32Array::New(env, out[i].numel());
            if (out[i].numel()) std::memcpy(f.Data(), out[i].data_ptr<float>(), out[i].numel() * sizeof(float));
            a.Set(uint32_t(i), f);
          }
          return a;
        },
        [] {});
  }

  // barrier() -> Promise<void>: async; resolves when every rank has called it.
  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& g = live(env, "barrier");
    auto group = group_;
    return run_async<int>(env, g.device(), "ProcessGroup.barrier", [group] { group->barrier(); return 0; },
                          [](Napi::Env env, int&) -> Napi::Value { return env.Undefined(); }, [] {});
  }

  // Long work on a model: the model is busy until the Promise settles (as its own trainEpoch).
  Napi::Value on_model(const Napi::CallbackInfo& info, const char* method,
                       std::function<void(DistGroup&, ModelCore&)> work) {
    Napi::Env env = info.Env();
    live(env, method);
    const std::string what = std::string("ProcessGroup.") + method;
    auto core = unwrap_model(info[0], what + ": model");
    if (core->busy) return rejected(env, what + ": model is busy (a trainEpoch/evaluate call on it is still running; await it first)");
    if (group_->config().backend == "nccl" && core->device != group_->device())
      throw Napi::Error::New(env, what + ": the model is on " + core->device.str() + " but this NCCL group reduces on " +
                                      group_->device().str());
    auto group = group_;
    core->busy = true;
    return run_async<int>(env, core->device, what, [group, core, work] { work(*group, *core); return 0; },
                          [](Napi::Env env, int&) -> Napi::Value { return env.Undefined(); }, [core] { core->busy = false; });
  }

  // broadcastModel(model, root = 0) -> Promise<void>: async; every rank's model gets root's parameters,
  // buffers, LWS scale and SGD momentum (a buffer not started yet counts as zeros, which SGD's first
  // step treats the same). The models must have the same architecture and optimizer on every rank.
  Napi::Value BroadcastModel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t root = 0;
    if (!info[1].IsUndefined()) {
      auto o = Napi::Object::New(env);
      o.Set("root", info[1]);
      root = args::integer(o, "ProcessGroup.broadcastModel:", "root", 0, 0, group_ ? group_->size() - 1 : 0);
    }
    return on_model(info, "broadcastModel", [root](DistGroup& g, ModelCore& m) {
      std::vector<torch::Tensor> ts;
      for (const auto& [name, t] : m.state()) ts.push_back(t);
      if (m.lws_scale.defined()) ts.push_back(m.lws_scale);
      if (m.opt_cfg.momentum != 0)
        for (auto& s : m.slots) {
          if (!s.momentum.defined()) s.momentum = torch::zeros_like(s.param);
          ts.push_back(s.momentum);
        }
      broadcast_tensors(g, ts, static_cast<int>(root));
      m.weights_changed();
    });
  }

  // averageBuffers(model) -> Promise<void>: async; floating-point buffers (BatchNorm running mean and
  // variance) become their mean over the ranks; integer ones (num_batches_tracked) stay.
  Napi::Value AverageBuffers(const Napi::CallbackInfo& info) {
    return on_model(info, "averageBuffers", [](DistGroup& g, ModelCore& m) {
      std::vector<torch::Tensor> ts;
      for (const auto& b : m.net->buffers())
        if (b.is_floating_point()) ts.push_back(b);
      allreduce_tensors(g, ts, 1.0 / g.size());
      m.weights_changed();
    });
  }

  // dispose(): sync; drops this handle's reference (models given the group with setProcessGroup keep
  // it until they drop it). Idempotent.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    group_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), live(info.Env(), "rank").rank()); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), live(info.Env(), "worldSize").size());
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), live(info.Env(), "backend").config().backend);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !group_); }

  std::shared_ptr<DistGroup> group_;
};

// initProcessGroup(options) -> Promise<ProcessGroup>: async (the rendezvous waits for every rank, up to
// options.timeoutMs). TypeError/RangeError on bad options; rejects when the rendezvous fails (port in
// use on rank 0, a rank that never comes, no such backend in this build).
Napi::Value InitProcessGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto cfg = options::dist_options(info[0], "initProcessGroup: options");
  const auto exec = cfg.backend == "nccl" ? cfg.device : torch::Device(torch::kCPU);
  return run_async<std::shared_ptr<DistGroup>>(
      env, exec, "initProcessGroup", [cfg] { return DistGroup::create(cfg); },
      [](Napi::Env env, std::shared_ptr<DistGroup>& g) -> Napi::Value {
        auto ext = Napi::External<std::shared_ptr<DistGroup>>::New(env, &g);
        return env.GetInstanceData<AddonData>()->process_group_ctor.New({ext});
      },
      [] {});
}

Napi::Value DistBackends(const Napi::CallbackInfo& info) {
  const auto names = dist_backends();
  auto a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(uint32_t(i), names[i]);
  return a;
}

}  // namespace

std::shared_ptr<DistGroup> unwrap_process_group(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  auto* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->process_group_ctor.Value()))
    args::type_error(env, what + " must be a ProcessGroup, got " + args::describe(v));
  auto g = ProcessGroupWrap::Unwrap(v.As<Napi::Object>())->group();
  if (!g) throw Napi::Error::New(env, what + ": ProcessGroup has been disposed");
  return g;
}

void init_process_group(Napi::Env env, Napi::Object exports, AddonData* data) {
  auto ctor = ProcessGroupWrap::Define(env);
  data->process_group_ctor = Napi::Persistent(ctor);
  exports.Set("ProcessGroup", ctor);
  exports.Set("initProcessGroup", Napi::Function::New(env, InitProcessGroup, "initProcessGroup"));
  exports.Set("distBackends", Napi::Function::New(env, DistBackends, "distBackends"));
}

}  // namespace btm
