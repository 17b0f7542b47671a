// Model: the JS surface of a network (ResNet or ViT) on a device with its SGD optimizer. Option parsing lives in
// bindings/options, state-dict conversion in state_io, the work in core/model_core. Long work
// (trainEpoch, evaluate) returns a Promise and runs on the device's executor thread; one call at a
// time per model.
#include "bindings/args.h"
#include "bindings/binding.h"
#include "bindings/options/common.h"
#include "bindings/options/eval_options.h"
#include "bindings/options/model_options.h"
#include "bindings/options/more_options.h"
#include "bindings/options/optimizer_options.h"
#include "bindings/options/peft_options.h"
#include "bindings/options/perf_options.h"
#include "bindings/options/dist_options.h"
#include "bindings/options/train_options.h"
#include "core/model_core.h"
#include "bindings/state_io.h"

namespace btm {

namespace {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  const std::shared_ptr<ModelCore>& core() const { return core_; }
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod<&ModelWrap::StateDict>("stateDict"),
                        InstanceMethod<&ModelWrap::LoadStateDict>("loadStateDict"),
                        InstanceMethod<&ModelWrap::Gradients>("gradients"),
                        InstanceMethod<&ModelWrap::OptimizerState>("optimizerState"),
                        InstanceMethod<&ModelWrap::LoadOptimizerState>("loadOptimizerState"),
                        InstanceMethod<&ModelWrap::ManualSeed>("manualSeed"),
                        InstanceMethod<&ModelWrap::SetOptimizer>("setOptimizer"),
                        InstanceMethod<&ModelWrap::SetPerformance>("setPerformance"),
                        InstanceMethod<&ModelWrap::SetLowRank>("setLowRank"),
                        InstanceMethod<&ModelWrap::MergeLowRank>("mergeLowRank"),
                        InstanceMethod<&ModelWrap::SetProcessGroup>("setProcessGroup"),
                        InstanceAccessor<&ModelWrap::LowRankInfo>("lowRank"),
                        InstanceMethod<&ModelWrap::SetPeft>("setPeft"),
                        InstanceAccessor<&ModelWrap::PeftInfo>("peft"),
                        InstanceMethod<&ModelWrap::TrainEpoch>("trainEpoch"),
                        InstanceMethod<&ModelWrap::Evaluate>("evaluate"),
                        InstanceMethod<&ModelWrap::Dispose>("dispose"),
                        InstanceAccessor<&ModelWrap::Disposed>("disposed"),
                        InstanceAccessor<&ModelWrap::Busy>("busy"),
                        InstanceAccessor<&ModelWrap::Info>("info")});
  }

  // new Model({arch, numClasses, inChannels, imageSize?, device?, seed?})
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    const auto o = options::model_options(info[0], "Model: options");
    core_ = guarded(env, "Model", [&] {
      return std::make_shared<ModelCore>(o.spec, o.num_classes, o.in_channels, o.image_size, o.device, o.seed);
    });
    report_memory(env);
  }

  ~ModelWrap() override { release(Env()); }

 private:
  // Tells V8 how much native memory this handle keeps alive (weights, gradients, momentum), so that
  // models dropped without dispose() are collected under memory pressure like any other garbage.
  // JS thread only; called after anything that changes the size.
  void report_memory(Napi::Env env) {
    const int64_t now = core_ ? core_->native_bytes() : 0;
    if (now != reported_) Napi::MemoryManagement::AdjustExternalMemory(env, now - reported_);
    reported_ = now;
  }
  void release(Napi::Env env) {
    core_.reset();
    report_memory(env);
  }

  // The live model, or a clear error when disposed or in use by a running call.
  ModelCore& idle(const Napi::Env& env, const char* method) {
    if (!core_) throw Napi::Error::New(env, std::string("Model.") + method + ": model has been disposed");
    if (core_->busy)
      throw Napi::Error::New(env, std::string("Model.") + method +
                                      ": model is busy (a trainEpoch/evaluate call on it is still running; await it first)");
    return *core_;
  }

  Napi::Value StateDict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "stateDict");
    return guarded(env, "Model.stateDict", [&] {
      return entries_to_js(env, m.export_state());
    });
  }

  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "gradients");
    return guarded(env, "Model.gradients", [&] {
      std::vector<std::pair<std::string, torch::Tensor>> grads;
      for (const auto& s : m.slots)
        if (s.param.grad().defined()) grads.emplace_back(s.name, s.param.grad());
      return entries_to_js(env, grads);
    });
  }

  // Strict: every name present, no extra names, same shape and dtype; all differences listed.
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "loadStateDict");
    load_strict(info[0], "Model.loadStateDict", "does not match " + m.spec.name, m.state());
    m.drop_lws();
    if (m.peft) {  // the model computes the loaded weights: LoRA B = 0, SSF the identity
      m.peft->reset();
      for (auto& s : m.slots)
        if (Peft::is_extra(s.name)) s.momentum = torch::Tensor();
    }
    if (m.low_rank) {  // the model computes the loaded weights: B = 0, factors' momentum restarts
      m.low_rank->reset();
      for (auto& s : m.slots)
        if (LowRank::is_factor(s.name)) s.momentum = torch::Tensor();
    }
    m.weights_changed();
    return env.Undefined();
  }

  // Momentum buffers, named "<param>.momentum_buffer", for resuming training exactly.
  Napi::Value OptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "optimizerState");
    return guarded(env, "Model.optimizerState", [&] { return entries_to_js(env, m.optimizer_state()); });
  }

  // Loads momentum buffers for the parameters the current optimizer trains (strict names/shapes).
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "loadOptimizerState");
    std::vector<std::pair<std::string, torch::Tensor>> targets;
    for (auto& s : m.slots) {
      if (LowRank::is_factor(s.name) || Peft::is_extra(s.name)) continue;  // not saved (ModelCore::optimizer_state)
      if (!s.momentum.defined()) s.momentum = torch::zeros_like(s.param);
      targets.emplace_back(s.name + ".momentum_buffer", s.momentum);
    }
    load_strict(info[0], "Model.loadOptimizerState", "does not match the trained parameters", targets);
    report_memory(env);
    return env.Undefined();
  }

  // manualSeed(seed): restarts the model's random stream (crops, flips, mixup).
  Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "manualSeed");
    auto o = Napi::Object::New(env);
    o.Set("seed", info[0]);
    m.reseed(options::seed(o, "Model.manualSeed:"));
    return env.Undefined();
  }

  // setOptimizer({momentum, weightDecay, nesterov, trainable}) – resets momentum buffers.
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setOptimizer");
    const auto cfg = options::optimizer_options(info[0], "Model.setOptimizer: options");
    if (cfg.trainable == Trainable::Peft && !m.peft)
      throw Napi::Error::New(env, "Model.setOptimizer: trainable 'peft' needs PEFT modules: call setPeft({modules}) first");
    if (cfg.trainable == Trainable::LastBlock && m.net->last_stage_prefix().empty())
      throw Napi::Error::New(env, "Model.setOptimizer: trainable 'last-block' needs a ResNet (its last residual stage); " +
                                      m.spec.name + " has none");
    if (cfg.lws && m.peft && m.peft->config().cosine_scale > 0)
      throw Napi::Error::New(env, "Model.setOptimizer: lws does not combine with a cosine head (setPeft head 'cosine')");
    guarded(env, "Model.setOptimizer", [&] {
      m.set_optimizer(cfg);
      return 0;
    });
    report_memory(env);
    return env.Undefined();
  }

  // setPerformance({amp: 'none'|'bf16'|'fp16', channelsLast, cudnnBenchmark, lossScale}): sync. channelsLast
  // on any device; amp and cudnnBenchmark act on CUDA only. Throws on a bad option or while a call runs.
  Napi::Value SetPerformance(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setPerformance");
    const auto cfg = options::perf_options(info[0], "Model.setPerformance: options");
    guarded(env, "Model.setPerformance", [&] {
      m.set_perf(cfg);
      return 0;
    });
    return env.Undefined();
  }

  // setLowRank({rank, layers?}): attaches MORE's low-rank factors (B = 0: the model computes the same
  // function) to the trained convolution / linear layers under `layers`; they train with the model's
  // SGD until mergeLowRank(). Call after setOptimizer (which keeps them); one set at a time.
  Napi::Value SetLowRank(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setLowRank");
    if (m.low_rank)
      throw Napi::Error::New(env, "Model.setLowRank: low-rank factors are attached already (mergeLowRank() first)");
    if (m.peft) throw Napi::Error::New(env, "Model.setLowRank: MORE's factors do not combine with PEFT modules (setPeft)");
    const auto o = options::low_rank_options(info[0], "Model.setLowRank: options", m);
    guarded(env, "Model.setLowRank", [&] {
      m.attach_low_rank(o.rank, o.layers);
      return 0;
    });
    report_memory(env);
    return env.Undefined();
  }

  // mergeLowRank(): W_g += B A and the factors dropped (no-op without factors).
  Napi::Value MergeLowRank(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "mergeLowRank");
    guarded(env, "Model.mergeLowRank", [&] {
      m.merge_low_rank();
      return 0;
    });
    report_memory(env);
    return env.Undefined();
  }

  // setProcessGroup(group: ProcessGroup | null, options?: {syncBatchNorm?: boolean}): sync. With a group,
  // every trainEpoch step sums the gradients over its ranks (weighted by options.gradWeights, else by
  // the rank's share of a global batch, else 1 / worldSize) before the SGD step: data-parallel training,
  // the ranks calling trainEpoch with the same number of steps. syncBatchNorm (default
  // defaults::kSyncBatchNorm): BatchNorm in train mode normalises over the global batch
  // (distributed/sync_batch_norm.h). Throws when busy, on bad options, or for an NCCL group on another
  // device.
  Napi::Value SetProcessGroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setProcessGroup");
    if (info[0].IsNull() || info[0].IsUndefined()) {
      m.dist.reset();
      m.sync_bn = defaults::kSyncBatchNorm;
      return env.Undefined();
    }
    auto g = unwrap_process_group(info[0], "Model.setProcessGroup: group");
    const auto opts = options::data_parallel_options(info[1], "Model.setProcessGroup: options");
    if (g->config().backend == "nccl" && g->device() != m.device)
      throw Napi::Error::New(env, "Model.setProcessGroup: the model is on " + m.device.str() +
                                      " but this NCCL group reduces on " + g->device().str());
    m.dist = g;
    m.sync_bn = opts.sync_batch_norm;
    return env.Undefined();
  }

  // lowRank -> {rank, layers: string[]} while factors are attached, else null.
  Napi::Value LowRankInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) throw Napi::Error::New(env, "Model.lowRank: model has been disposed");
    if (!core_->low_rank) return env.Null();
    auto o = Napi::Object::New(env);
    o.Set("rank", double(core_->low_rank->rank()));
    auto layers = Napi::Array::New(env);
    for (const auto& f : core_->low_rank->factors()) layers.Set(layers.Length(), f.layer);
    o.Set("layers", layers);
    return o;
  }

  // setPeft({modules, rank?, bottleneck?, head?, cosineScale?}): attaches PEFT modules
  // (models/peft.h), each an exact no-op at the start; setOptimizer({trainable: 'peft'}) then trains
  // them and the head only. One set per model, for its lifetime.
  Napi::Value SetPeft(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setPeft");
    if (m.peft) throw Napi::Error::New(env, "Model.setPeft: PEFT modules are attached already (one set per model)");
    if (m.low_rank) throw Napi::Error::New(env, "Model.setPeft: PEFT modules do not combine with MORE's low-rank factors (mergeLowRank() first)");
    if (m.lws_scale.defined()) throw Napi::Error::New(env, "Model.setPeft: an LWS scale is pending (setOptimizer({lws: false}) first)");
    const auto cfg = options::peft_options(info[0], "Model.setPeft: options", m);
    guarded(env, "Model.setPeft", [&] {
      m.attach_peft(cfg);
      return 0;
    });
    report_memory(env);
    return env.Undefined();
  }

  // peft -> {modules: string[], rank?, bottleneck?, head, cosineScale?, parameters} or null.
  Napi::Value PeftInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) throw Napi::Error::New(env, "Model.peft: model has been disposed");
    if (!core_->peft) return env.Null();
    const auto& c = core_->peft->config();
    auto o = Napi::Object::New(env);
    auto mods = Napi::Array::New(env);
    const auto& names = peft_module_names();
    for (size_t k = 0; k < names.size(); ++k)
      if (c.modules & (1u << k)) mods.Set(mods.Length(), names[k]);
    o.Set("modules", mods);
    if (c.modules & kPeftLoRA) o.Set("rank", double(c.rank));
    if (c.modules & kPeftAdaptFormer) o.Set("bottleneck", double(c.bottleneck));
    o.Set("head", c.cosine_scale > 0 ? "cosine" : "linear");
    if (c.cosine_scale > 0) o.Set("cosineScale", c.cosine_scale);
    // the number of tensors' elements the PEFT optimizer trains (head included)
    int64_t trained = 0;
    for (const auto& s : core_->slots) trained += s.param.numel();
    o.Set("trainedParameters", double(trained));
    return o;
  }

  // Checks shared by trainEpoch and evaluate: the dataset fits this model.
  std::shared_ptr<DataCore> dataset_for(const ModelCore& m, const Napi::Value& v, const std::string& what) {
    Napi::Env env = v.Env();
    auto d = unwrap_dataset(v, what);
    if (d->device != m.device)
      throw Napi::Error::New(env, what + " is on " + d->device.str() + " but the model is on " + m.device.str());
    if (d->c != m.in_channels)
      args::range_error(env, what + " has " + std::to_string(d->c) + " channel(s), the model expects inChannels = " +
                                 std::to_string(m.in_channels));
    if (m.image_size > 0 && (d->h != m.image_size || d->w != m.image_size))
      args::range_error(env, what + " images are " + std::to_string(d->h) + "x" + std::to_string(d->w) +
                                 ", the model expects imageSize = " + std::to_string(m.image_size));
    if (d->max_label >= m.num_classes)
      args::range_error(env, what + " has label " + std::to_string(d->max_label) + ", out of range for numClasses = " +
                                 std::to_string(m.num_classes));
    return d;
  }

  // Starts long work on the model's device executor; the model is busy until its Promise settles.
  template <typename Result>
  Napi::Value start(Napi::Env env, const std::string& where, std::function<Result()> work,
                    std::function<Napi::Value(Napi::Env, Result&)> to_js) {
    auto core = core_;
    core->busy = true;
    // The JS object stays alive while its Promise is pending (the job holds a reference to it), so
    // `this` is valid when `done` runs.
    auto self = Napi::Persistent(Value());
    auto* me = this;
    auto keep = std::make_shared<Napi::ObjectReference>(std::move(self));
    keep->SuppressDestruct();  // released by Reset() on the JS thread; never from the executor thread
    return run_async<Result>(env, core->device, where, std::move(work), std::move(to_js), [core, me, keep, env] {
      core->busy = false;
      me->report_memory(env);
      keep->Reset();
    });
  }

  // The model's long calls: a disposed model throws, a busy one gives a rejected Promise (the caller
  // awaits the call anyway), checked before the arguments.
  ModelCore* live(const Napi::Env& env, const char* method) {
    if (!core_) throw Napi::Error::New(env, std::string("Model.") + method + ": model has been disposed");
    return core_->busy ? nullptr : core_.get();
  }
  static Napi::Value busy_rejection(const Napi::Env& env, const char* method) {
    return rejected(env, std::string("Model.") + method +
                             ": model is busy (a trainEpoch/evaluate call on it is still running; await it first)");
  }

  // trainEpoch(dataset, indices: Int32Array, options)
  //   -> Promise<{losses, accs, steps, samples, skippedSteps, lossScale: number | null}>
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* mp = live(env, "trainEpoch");
    if (!mp) return busy_rejection(env, "trainEpoch");
    auto& m = *mp;
    const std::string where = "Model.trainEpoch";
    auto data = dataset_for(m, info[0], where + ": dataset");
    auto idx = args::indices(info[1], where + ": indices", data->n);
    options::GroupInfo group;
    if (m.dist) group = {m.dist->rank(), m.dist->size(), m.sync_bn};
    const auto cfg = options::train_options(info[2], where + ": options", *data, int64_t(idx.size()), m.num_classes, m.in_channels, group);
    if (cfg.more.on() && !m.low_rank)
      throw Napi::Error::New(env, where + ": options.more needs low-rank factors: call setLowRank({rank}) first");
    if (!cfg.grad_weights.empty() && !m.dist)
      throw Napi::Error::New(env, where + ": options.gradWeights needs a process group: call setProcessGroup(group) first");
    auto core = core_;
    return start<TrainResult>(
        env, where, [core, data, idx = std::move(idx), cfg] { return core->train(*data, idx, cfg); },
        [](Napi::Env env, TrainResult& r) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("losses", copy_to_js<float, Napi::Float32Array>(env, r.losses));
          out.Set("accs", copy_to_js<float, Napi::Float32Array>(env, r.accs));
          out.Set("steps", double(r.steps));
          out.Set("samples", double(r.samples));
          out.Set("skippedSteps", double(r.skipped_steps));
          out.Set("lossScale", r.loss_scale > 0 ? Napi::Value(Napi::Number::New(env, r.loss_scale)) : env.Null());
          return out;
        });
  }

  // evaluate(dataset, indices: Int32Array | null, options) -> Promise<{preds, logits?, features?}>
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* mp = live(env, "evaluate");
    if (!mp) return busy_rejection(env, "evaluate");
    auto& m = *mp;
    const std::string where = "Model.evaluate";
    auto data = dataset_for(m, info[0], where + ": dataset");
    std::optional<std::vector<int64_t>> idx;
    if (!info[1].IsUndefined() && !info[1].IsNull()) idx = args::indices(info[1], where + ": indices", data->n);
    const auto cfg = options::eval_options(info[2], where + ": options", idx ? int64_t(idx->size()) : data->n, m.in_channels);
    if (cfg.general_path && !m.low_rank)
      throw Napi::Error::New(env, where + ": options.path 'general' needs low-rank factors (setLowRank)");
    auto core = core_;
    return start<EvalResult>(
        env, where,
        [core, data, idx = std::move(idx), cfg] { return core->evaluate(*data, idx ? &*idx : nullptr, cfg); },
        [cfg](Napi::Env env, EvalResult& r) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("preds", copy_to_js<int32_t, Napi::Int32Array>(env, r.preds));
          if (cfg.want_logits) out.Set("logits", copy_to_js<float, Napi::Float32Array>(env, r.logits));
          if (cfg.want_features) out.Set("features", copy_to_js<float, Napi::Float32Array>(env, r.features));
          out.Set("numClasses", double(r.num_classes));
          out.Set("featureDim", double(r.feature_dim));
          return out;
        });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (core_ && core_->busy)
      throw Napi::Error::New(info.Env(), "Model.dispose: model is busy (a trainEpoch/evaluate call on it is still running; await it first)");
    release(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_); }
  Napi::Value Busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), core_ && core_->busy); }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) throw Napi::Error::New(env, "Model.info: model has been disposed");
    const auto& m = *core_;
    auto o = Napi::Object::New(env);
    o.Set("arch", m.spec.name);
    o.Set("numClasses", double(m.num_classes));
    o.Set("inChannels", double(m.in_channels));
    o.Set("imageSize", double(m.image_size));
    o.Set("device", m.device.str());
    o.Set("featureDim", double(m.net->feature_dim));
    int64_t params = 0;
    for (const auto& p : m.net->parameters()) params += p.numel();
    o.Set("numParameters", double(params));
    return o;
  }

  std::shared_ptr<ModelCore> core_;
  int64_t reported_ = 0;  // bytes reported to V8
};

}  // namespace

std::shared_ptr<ModelCore> unwrap_model(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  auto* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->model_ctor.Value()))
    args::type_error(env, what + " must be a Model, got " + args::describe(v));
  auto core = ModelWrap::Unwrap(v.As<Napi::Object>())->core();
  if (!core) throw Napi::Error::New(env, what + ": Model has been disposed");
  return core;
}

void init_model(Napi::Env env, Napi::Object exports, AddonData* data) {
  auto ctor = ModelWrap::Define(env);
  data->model_ctor = Napi::Persistent(ctor);
  exports.Set("Model", ctor);
}

}  // namespace btm
