// Model: a ResNet on a device with its SGD optimizer. Long work (trainEpoch, evaluate) returns a
// Promise and runs on libuv's pool; one call at a time per model.
#include <cstring>
#include <unordered_map>

#include "args.h"
#include "binding.h"

namespace btm {

torch::Device device_arg(const Napi::Object& o, const std::string& what) {
  const auto v = o.Get("device");
  if (v.IsUndefined()) return torch::Device(torch::kCPU);
  if (!v.IsString()) args::type_error(o.Env(), what + ".device must be a string, got " + args::describe(v));
  torch::Device device(torch::kCPU);
  std::string err;
  if (!parse_device(v.As<Napi::String>().Utf8Value(), &device, &err)) args::range_error(o.Env(), what + ".device: " + err);
  return device;
}

namespace {

constexpr double kMaxSeed = 9007199254740991.0;  // 2^53 - 1

uint64_t seed_arg(const Napi::Object& o, const std::string& what) {
  return static_cast<uint64_t>(args::integer(o, what, "seed", 0, 0, static_cast<int64_t>(kMaxSeed)));
}

Normalize normalize_arg(const Napi::Object& o, const std::string& what, int64_t channels) {
  const auto v = o.Get("normalize");
  if (v.IsUndefined() || v.IsNull()) return {};
  const auto n = args::object(v, what + ".normalize", false);
  args::only(n, what + ".normalize", {"mean", "std"});
  Normalize out;
  out.mean = args::floats(n, what + ".normalize", "mean", channels, -1e6, 1e6);
  out.std = args::floats(n, what + ".normalize", "std", channels, 1e-12, 1e6);
  if (out.mean.empty() || out.std.empty())
    args::type_error(o.Env(), what + ".normalize needs both mean and std (one number per channel)");
  return out;
}

Napi::Object tensor_entry(Napi::Env env, const std::string& name, const torch::Tensor& t_in) {
  const auto t = t_in.detach().to(torch::kCPU).contiguous();
  auto e = Napi::Object::New(env);
  e.Set("name", name);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(uint32_t(i), double(t.size(i)));
  e.Set("shape", shape);
  const size_t n = t.numel();
  if (t.scalar_type() == torch::kLong) {
    e.Set("dtype", "int64");
    auto a = Napi::BigInt64Array::New(env, n);
    if (n) std::memcpy(a.Data(), t.data_ptr<int64_t>(), n * 8);
    e.Set("data", a);
  } else {
    const auto f = t.to(torch::kFloat);
    e.Set("dtype", "float32");
    auto a = Napi::Float32Array::New(env, n);
    if (n) std::memcpy(a.Data(), f.data_ptr<float>(), n * 4);
    e.Set("data", a);
  }
  return e;
}

Napi::Array entries_to_js(Napi::Env env, const std::vector<std::pair<std::string, torch::Tensor>>& entries) {
  auto out = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) out.Set(uint32_t(i), tensor_entry(env, entries[i].first, entries[i].second));
  return out;
}

// BatchNorm in train mode needs 2+ samples per batch: refuse a batch of one before any step runs.
void check_batches(const Napi::Env& env, const std::string& what, int64_t n, int64_t bs, bool drop_last) {
  if (bs == 1) args::range_error(env, what + ".batchSize must be > 1 with bnMode 'train' (BatchNorm needs 2+ samples)");
  if (!drop_last && n % bs == 1)
    args::range_error(env, what + ": the last batch would hold 1 sample (" + std::to_string(n) + " indices, batchSize " +
                               std::to_string(bs) + "); BatchNorm in train mode needs 2+: set dropLast or change batchSize");
}

LossConfig loss_arg(const Napi::Object& o, const std::string& what, int64_t num_classes) {
  LossConfig loss;
  loss.kind = args::choice(o, what, "loss", std::string("ce"), {"ce", "gml"}) == "gml" ? LossKind::GML : LossKind::SoftTargetCE;
  loss.logit_offsets = args::floats(o, what, "logitOffsets", num_classes, -1e4, 1e4);
  loss.label_smoothing = args::floats(o, what, "labelSmoothing", num_classes, 0, 1);
  loss.gml_power = args::number(o, what, "gmlPower", 1.0, 0.1, 10);
  if (loss.kind == LossKind::GML && !loss.label_smoothing.empty())
    args::range_error(o.Env(), what + ": loss 'gml' does not take labelSmoothing");
  return loss;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
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
                        InstanceMethod<&ModelWrap::TrainEpoch>("trainEpoch"),
                        InstanceMethod<&ModelWrap::Evaluate>("evaluate"),
                        InstanceMethod<&ModelWrap::Dispose>("dispose"),
                        InstanceAccessor<&ModelWrap::Disposed>("disposed"),
                        InstanceAccessor<&ModelWrap::Busy>("busy"),
                        InstanceAccessor<&ModelWrap::Info>("info")});
  }
  const std::shared_ptr<ModelCore>& core() const { return core_; }

  // new Model({arch, numClasses, inChannels, imageSize?, device?, seed?})
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    const std::string what = "Model: options";
    const auto o = args::object(info[0], what, false);
    args::only(o, what, {"arch", "numClasses", "inChannels", "imageSize", "device", "seed"});
    std::string names;
    for (const auto& a : arch_names()) names += (names.empty() ? "" : ", ") + a;
    const auto archv = o.Get("arch");
    if (!archv.IsString()) args::type_error(env, what + ".arch must be a string (" + names + "), got " + args::describe(archv));
    ArchSpec spec;
    const auto arch = archv.As<Napi::String>().Utf8Value();
    if (!find_arch(arch, &spec)) args::range_error(env, what + ".arch: unknown architecture '" + arch + "' (known: " + names + ")");
    const int64_t num_classes = args::integer(o, what, "numClasses", std::nullopt, 1, 1 << 20);
    const int64_t in_channels = args::integer(o, what, "inChannels", 3, 1, 4096);
    const int64_t image_size = args::integer(o, what, "imageSize", 0, 0, 65536);
    const auto device = device_arg(o, what);
    const auto seed = seed_arg(o, what);
    core_ = guarded(env, "Model", [&] {
      return std::make_shared<ModelCore>(spec, num_classes, in_channels, image_size, device, seed);
    });
  }

 private:
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
      if (!s.momentum.defined()) s.momentum = torch::zeros_like(s.param);
      targets.emplace_back(s.name + ".momentum_buffer", s.momentum);
    }
    load_strict(info[0], "Model.loadOptimizerState", "does not match the trained parameters", targets);
    return env.Undefined();
  }

  // manualSeed(seed): restarts the model's random stream (crops, flips, mixup).
  Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "manualSeed");
    auto o = Napi::Object::New(env);
    o.Set("seed", info[0]);
    m.reseed(seed_arg(o, "Model.manualSeed:"));
    return env.Undefined();
  }

  static void load_strict(const Napi::Value& v, const std::string& where, const std::string& mismatch,
                          const std::vector<std::pair<std::string, torch::Tensor>>& state) {
    Napi::Env env = v.Env();
    const std::string what = where + ": state";
    if (!v.IsArray()) args::type_error(env, what + " must be an array of {name, shape, dtype, data}, got " + args::describe(v));
    const auto arr = v.As<Napi::Array>();
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < state.size(); ++i) index[state[i].first] = i;
    std::vector<std::string> problems;
    std::vector<std::pair<size_t, Napi::TypedArray>> matched;
    std::vector<bool> seen(state.size(), false);
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string at = what + "[" + std::to_string(i) + "]";
      const auto e = args::object(arr.Get(i), at, false);
      const auto namev = e.Get("name");
      if (!namev.IsString()) args::type_error(env, at + ".name must be a string, got " + args::describe(namev));
      const auto name = namev.As<Napi::String>().Utf8Value();
      const auto it = index.find(name);
      if (it == index.end()) {
        problems.push_back("unexpected key '" + name + "'");
        continue;
      }
      if (seen[it->second]) {
        problems.push_back("duplicate key '" + name + "'");
        continue;
      }
      seen[it->second] = true;
      const auto& t = state[it->second].second;
      const auto shapev = e.Get("shape");
      if (!shapev.IsArray()) args::type_error(env, at + ".shape must be an array, got " + args::describe(shapev));
      std::vector<int64_t> shape;
      const auto sa = shapev.As<Napi::Array>();
      for (uint32_t d = 0; d < sa.Length(); ++d) {
        const auto x = sa.Get(d);
        if (!x.IsNumber()) args::type_error(env, at + ".shape[" + std::to_string(d) + "] must be a number");
        shape.push_back(int64_t(x.As<Napi::Number>().DoubleValue()));
      }
      const std::vector<int64_t> want(t.sizes().begin(), t.sizes().end());
      const bool is_long = t.scalar_type() == torch::kLong;
      const std::string want_dtype = is_long ? "int64" : "float32";
      const auto dtv = e.Get("dtype");
      const std::string dtype = dtv.IsString() ? dtv.As<Napi::String>().Utf8Value() : args::describe(dtv);
      const auto data = e.Get("data");
      const auto want_arr = is_long ? napi_bigint64_array : napi_float32_array;
      if (shape != want) {
        problems.push_back("'" + name + "': shape " + shape_str(shape) + ", expected " + shape_str(want));
      } else if (dtype != want_dtype) {
        problems.push_back("'" + name + "': dtype " + dtype + ", expected " + want_dtype);
      } else if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != want_arr) {
        problems.push_back("'" + name + "': data must be a " + (is_long ? "BigInt64Array" : "Float32Array"));
      } else if (data.As<Napi::TypedArray>().ElementLength() != size_t(t.numel())) {
        problems.push_back("'" + name + "': data has " + std::to_string(data.As<Napi::TypedArray>().ElementLength()) +
                           " elements, expected " + std::to_string(t.numel()));
      } else {
        matched.emplace_back(it->second, data.As<Napi::TypedArray>());
      }
    }
    for (size_t i = 0; i < state.size(); ++i)
      if (!seen[i]) problems.push_back("missing key '" + state[i].first + "'");
    if (!problems.empty()) {
      std::string msg = where + ": state " + mismatch + " (" + std::to_string(problems.size()) + " problem(s)):";
      for (size_t i = 0; i < problems.size() && i < 30; ++i) msg += "\n  " + problems[i];
      if (problems.size() > 30) msg += "\n  ... and " + std::to_string(problems.size() - 30) + " more";
      throw Napi::Error::New(env, msg);
    }
    guarded(env, where, [&] {
      torch::NoGradGuard no_grad;
      for (auto& [i, a] : matched) {
        auto t = state[i].second;
        const auto dtype = t.scalar_type() == torch::kLong ? torch::kLong : torch::kFloat;
        const auto src = torch::from_blob(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), t.sizes(), dtype);
        t.copy_(src);
      }
      return 0;
    });
  }

  // setOptimizer({momentum, weightDecay, nesterov, trainable}) – resets momentum buffers.
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setOptimizer");
    const std::string what = "Model.setOptimizer: options";
    const auto o = args::object(info[0], what);
    args::only(o, what, {"momentum", "weightDecay", "nesterov", "trainable", "lws"});
    OptimizerConfig cfg;
    cfg.momentum = args::number(o, what, "momentum", 0.9, 0, 1);
    cfg.weight_decay = args::number(o, what, "weightDecay", 5e-4, 0, 1e3);
    cfg.nesterov = args::boolean(o, what, "nesterov", false);
    const auto t = args::choice(o, what, "trainable", std::string("all"), {"all", "classifier", "backbone"});
    cfg.trainable = t == "all" ? Trainable::All : t == "classifier" ? Trainable::Classifier : Trainable::Backbone;
    cfg.lws = args::boolean(o, what, "lws", false);
    if (cfg.nesterov && cfg.momentum <= 0)
      args::range_error(env, what + ".nesterov needs momentum > 0");
    guarded(env, "Model.setOptimizer", [&] {
      m.set_optimizer(cfg);
      return 0;
    });
    return env.Undefined();
  }

  // setPerformance({amp: 'none'|'bf16'|'fp16', channelsLast, cudnnBenchmark}) – CUDA only; no-ops on CPU.
  Napi::Value SetPerformance(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "setPerformance");
    const std::string what = "Model.setPerformance: options";
    const auto o = args::object(info[0], what);
    args::only(o, what, {"amp", "channelsLast", "cudnnBenchmark"});
    PerfConfig cfg;
    const auto amp = args::choice(o, what, "amp", std::string("none"), {"none", "bf16", "fp16"});
    cfg.amp = amp == "none" ? Amp::None : amp == "bf16" ? Amp::BF16 : Amp::FP16;
    cfg.channels_last = args::boolean(o, what, "channelsLast", false);
    cfg.cudnn_benchmark = args::boolean(o, what, "cudnnBenchmark", false);
    guarded(env, "Model.setPerformance", [&] {
      m.set_perf(cfg);
      return 0;
    });
    return env.Undefined();
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

  template <typename Result>
  Napi::Value run_async(Napi::Env env, const std::string& where, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> to_js) {
    auto core = core_;
    core->busy = true;
    auto* w = new PromiseWorker<Result>(env, where, std::move(work), std::move(to_js), [core] { core->busy = false; });
    auto promise = w->Promise();
    w->Queue();
    return promise;
  }

  // trainEpoch(dataset, indices: Int32Array, options) -> Promise<{losses, accs, steps, samples}>
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "trainEpoch");
    const std::string where = "Model.trainEpoch";
    auto data = dataset_for(m, info[0], where + ": dataset");
    auto idx = args::indices(info[1], where + ": indices", data->n);
    const std::string what = where + ": options";
    const auto o = args::object(info[2], what);
    args::only(o, what, {"lr", "batchSize", "dropLast", "cropPadding", "hflip", "normalize", "mixupAlpha", "loss",
                         "logitOffsets", "labelSmoothing", "gmlPower", "bnMode"});
    TrainConfig cfg;
    cfg.batch_size = args::integer(o, what, "batchSize", 128, 1, 1 << 20);
    cfg.drop_last = args::boolean(o, what, "dropLast", false);
    const int64_t n = static_cast<int64_t>(idx.size());
    const int64_t steps = cfg.drop_last ? n / cfg.batch_size : (n + cfg.batch_size - 1) / cfg.batch_size;
    // lr: one number for every step, or one per step
    if (o.Get("lr").IsNumber() || o.Get("lr").IsUndefined() || o.Get("lr").IsNull()) {
      cfg.lrs.assign(steps, static_cast<float>(args::number(o, what, "lr", std::nullopt, 0, 1e3)));
    } else {
      cfg.lrs = args::floats(o, what, "lr", steps, 0, 1e3);
    }
    cfg.crop_padding = args::integer(o, what, "cropPadding", 0, 0, std::min(data->h, data->w));
    cfg.hflip = args::boolean(o, what, "hflip", false);
    cfg.normalize = normalize_arg(o, what, m.in_channels);
    cfg.mixup_alpha = args::number(o, what, "mixupAlpha", 0, 0, 1e3);
    cfg.loss = loss_arg(o, what, m.num_classes);
    if (cfg.loss.kind == LossKind::GML && cfg.mixup_alpha > 0)
      args::range_error(env, what + ": loss 'gml' does not take mixup (mixupAlpha must be 0)");
    cfg.bn_train = args::choice(o, what, "bnMode", std::string("train"), {"train", "eval"}) == "train";
    if (cfg.bn_train) check_batches(env, what, n, cfg.batch_size, cfg.drop_last);
    auto core = core_;
    return run_async<TrainResult>(
        env, where, [core, data, idx = std::move(idx), cfg] { return core->train(*data, idx, cfg); },
        [](Napi::Env env, TrainResult& r) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("losses", copy_to_js<float, Napi::Float32Array>(env, r.losses));
          out.Set("accs", copy_to_js<float, Napi::Float32Array>(env, r.accs));
          out.Set("steps", double(r.steps));
          out.Set("samples", double(r.samples));
          return out;
        });
  }

  // evaluate(dataset, indices: Int32Array | null, options) -> Promise<{preds, logits?, features?}>
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& m = idle(env, "evaluate");
    const std::string where = "Model.evaluate";
    auto data = dataset_for(m, info[0], where + ": dataset");
    std::optional<std::vector<int64_t>> idx;
    if (!info[1].IsUndefined() && !info[1].IsNull()) idx = args::indices(info[1], where + ": indices", data->n);
    const std::string what = where + ": options";
    const auto o = args::object(info[2], what);
    args::only(o, what, {"batchSize", "normalize", "logits", "features", "bnMode"});
    EvalConfig cfg;
    cfg.batch_size = args::integer(o, what, "batchSize", 256, 1, 1 << 20);
    cfg.normalize = normalize_arg(o, what, m.in_channels);
    cfg.want_logits = args::boolean(o, what, "logits", false);
    cfg.want_features = args::boolean(o, what, "features", false);
    cfg.bn_train = args::choice(o, what, "bnMode", std::string("eval"), {"eval", "train"}) == "train";
    if (cfg.bn_train) check_batches(env, what, idx ? int64_t(idx->size()) : data->n, cfg.batch_size, false);
    auto core = core_;
    return run_async<EvalResult>(
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
    core_.reset();
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
