// Dataset: uint8 NCHW images and int labels (or multi-hot targets) uploaded once to a device.
#include <cstring>

#include "bindings/args.h"
#include "bindings/binding.h"
#include "bindings/options/common.h"
#include "compat.h"
#include "defaults.h"
#include "train/batch.h"

namespace btm {

namespace {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Dataset",
                       {InstanceMethod<&DatasetWrap::Dispose>("dispose"),
                        InstanceAccessor<&DatasetWrap::Disposed>("disposed"),
                        InstanceAccessor<&DatasetWrap::Size>("size"),
                        InstanceAccessor<&DatasetWrap::Shape>("shape"),
                        InstanceAccessor<&DatasetWrap::Device>("device"),
                        InstanceAccessor<&DatasetWrap::MaxLabel>("maxLabel"),
                        InstanceAccessor<&DatasetWrap::NumTargets>("numTargets")});
  }

  // new Dataset(images: Uint8Array, labels: Int32Array, {n, channels, height, width, device}), or, for a
  // multi-label set, new Dataset(images, targets: Uint8Array, {n, channels, height, width, numClasses, device})
  // with `targets` multi-hot, row-major [n, numClasses]: each entry 0 or 1, each row at least one 1.
  explicit DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
    Napi::Env env = info.Env();
    const std::string what = "Dataset";
    const auto imgs = info[0];
    if (!imgs.IsTypedArray() || imgs.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      args::type_error(env, what + ": images must be a Uint8Array (NCHW), got " + args::describe(imgs));
    const auto labs = info[1];
    const bool multi = labs.IsTypedArray() && labs.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
    if (!multi && (!labs.IsTypedArray() || labs.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array))
      args::type_error(env, what + ": labels must be an Int32Array (one label per image) or a Uint8Array (multi-hot targets), got " +
                                args::describe(labs));
    const auto opts = args::object(info[2], what + ": shape", false);
    if (multi) args::only(opts, what, {"n", "channels", "height", "width", "device", "numClasses"});
    else args::only(opts, what, {"n", "channels", "height", "width", "device"});
    const int64_t kMax = int64_t(1) << 31;
    const int64_t n = args::integer(opts, what, "n", std::nullopt, 0, kMax);
    const int64_t c = args::integer(opts, what, "channels", std::nullopt, 1, 4096);
    const int64_t h = args::integer(opts, what, "height", std::nullopt, 1, 65536);
    const int64_t w = args::integer(opts, what, "width", std::nullopt, 1, 65536);
    const int64_t k = multi ? args::integer(opts, what, "numClasses", std::nullopt, 1, defaults::kMaxClasses) : 0;
    auto images = imgs.As<Napi::Uint8Array>();
    int64_t bytes = 0;
    if (__builtin_mul_overflow(n, c, &bytes) || __builtin_mul_overflow(bytes, h, &bytes) ||
        __builtin_mul_overflow(bytes, w, &bytes) || bytes > (int64_t(1) << 46))
      args::range_error(env, what + ": shape " + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) +
                                 "x" + std::to_string(w) + " is too large");
    if (static_cast<int64_t>(images.ElementLength()) != bytes)
      args::range_error(env, what + ": images has " + std::to_string(images.ElementLength()) +
                                 " bytes, expected n*channels*height*width = " + std::to_string(bytes));
    int32_t max_label = -1;
    if (multi) {
      auto targets = labs.As<Napi::Uint8Array>();
      int64_t entries = 0;
      if (__builtin_mul_overflow(n, k, &entries) || static_cast<int64_t>(targets.ElementLength()) != entries)
        args::range_error(env, what + ": targets has " + std::to_string(targets.ElementLength()) +
                                   " entries, expected n*numClasses = " + std::to_string(n) + "*" + std::to_string(k));
      const uint8_t* t = targets.Data();
      for (int64_t i = 0; i < n; ++i) {
        bool any = false;
        for (int64_t j = 0; j < k; ++j) {
          const uint8_t v = t[i * k + j];
          if (v > 1)
            args::range_error(env, what + ": targets[" + std::to_string(i * k + j) + "] = " + std::to_string(v) + " (sample " +
                                       std::to_string(i) + ", class " + std::to_string(j) + ") is not 0 or 1");
          if (v) any = true, max_label = std::max(max_label, static_cast<int32_t>(j));
        }
        if (!any) args::range_error(env, what + ": sample " + std::to_string(i) + " has an empty label set (no 1 in its targets row)");
      }
    } else {
      auto labels = labs.As<Napi::Int32Array>();
      if (static_cast<int64_t>(labels.ElementLength()) != n)
        args::range_error(env, what + ": labels has " + std::to_string(labels.ElementLength()) +
                                   " entries, expected n = " + std::to_string(n));
      const int32_t* lab = labels.Data();
      for (int64_t i = 0; i < n; ++i) {
        if (lab[i] < 0)
          args::range_error(env, what + ": labels[" + std::to_string(i) + "] = " + std::to_string(lab[i]) + " is negative");
        max_label = std::max(max_label, lab[i]);
      }
    }
    const torch::Device device = options::device(opts, what);
    core_ = guarded(env, what, [&] {
      auto d = std::make_shared<DataCore>();
      d->n = n, d->c = c, d->h = h, d->w = w, d->max_label = max_label, d->device = device, d->num_targets = k;
      d->images = torch::from_blob(images.Data(), {n, c, h, w}, torch::kUInt8).clone().to(device);
      if (multi) d->targets = torch::from_blob(labs.As<Napi::Uint8Array>().Data(), {n, k}, torch::kUInt8).clone().to(device);
      else d->labels = torch::from_blob(labs.As<Napi::Int32Array>().Data(), {n}, torch::kInt).to(torch::kLong).to(device);
      return d;
    });
    bytes_ = n * c * h * w + (multi ? n * k : n * 8);
    if (device.is_cpu()) Napi::MemoryManagement::AdjustExternalMemory(env, bytes_);
  }

  ~DatasetWrap() override { release(); }

  std::shared_ptr<DataCore> core() const { return core_; }

 private:
  void release() {
    if (core_ && core_->device.is_cpu()) Napi::MemoryManagement::AdjustExternalMemory(Env(), -bytes_);
    core_.reset();
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_); }
  const DataCore& live(const Napi::Env& env) const {
    if (!core_) throw Napi::Error::New(env, "Dataset has been disposed");
    return *core_;
  }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(live(info.Env()).n)); }
  Napi::Value Shape(const Napi::CallbackInfo& info) {
    const auto& d = live(info.Env());
    auto a = Napi::Array::New(info.Env(), 4);
    a.Set(0u, double(d.n)), a.Set(1u, double(d.c)), a.Set(2u, double(d.h)), a.Set(3u, double(d.w));
    return a;
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), live(info.Env()).device.str());
  }
  Napi::Value MaxLabel(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), live(info.Env()).max_label);
  }

  // numTargets -> the multi-hot width of a multi-label set, 0 for a single-label one
  Napi::Value NumTargets(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(live(info.Env()).num_targets));
  }

  std::shared_ptr<DataCore> core_;
  int64_t bytes_ = 0;
};

// _batchTargets(dataset, indices: Int32Array, {batchSize, mixupAlpha?, seed?}) -> [{lam, targets: Float32Array}]:
// the targets of the training batches BatchMaker builds from a multi-label set (mixup included), for the
// test that checks mixup on multi-hot targets (test only).
Napi::Value BatchTargets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string what = "_batchTargets";
  auto data = unwrap_dataset(info[0], what + ": dataset");
  if (!data->multi_label()) args::range_error(env, what + ": the dataset is not multi-label");
  const auto idx = args::indices(info[1], what + ": indices", data->n);
  const auto o = args::object(info[2], what + ": options", false);
  args::only(o, what, {"batchSize", "mixupAlpha", "seed"});
  TrainConfig cfg;
  cfg.batch_size = args::integer(o, what, "batchSize", std::nullopt, 1, defaults::kMaxBatch);
  cfg.mixup_alpha = args::number(o, what, "mixupAlpha", 0, 0, defaults::kMaxMixupAlpha);
  const auto seed = static_cast<uint64_t>(args::integer(o, what, "seed", 0, 0, int64_t(1) << 53));
  return guarded(env, what, [&] {
    auto gen = compat::cpu_generator(seed);
    BatchMaker batches(*data, idx, cfg, false, gen);
    auto out = Napi::Array::New(env, batches.steps());
    for (int64_t s = 0; s < batches.steps(); ++s) {
      const Batch b = batches.next();
      const auto t = b.t.to(torch::kCPU).contiguous();
      auto e = Napi::Object::New(env);
      e.Set("lam", b.lam);
      auto a = Napi::Float32Array::New(env, t.numel());
      std::memcpy(a.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
      e.Set("targets", a);
      out.Set(uint32_t(s), e);
    }
    return out;
  });
}

}  // namespace

void init_dataset(Napi::Env env, Napi::Object exports, AddonData* data) {
  auto ctor = DatasetWrap::Define(env);
  data->dataset_ctor = Napi::Persistent(ctor);
  exports.Set("Dataset", ctor);
  exports.Set("_batchTargets", Napi::Function::New(env, BatchTargets, "_batchTargets"));
}

std::shared_ptr<DataCore> unwrap_dataset(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  auto* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->dataset_ctor.Value()))
    args::type_error(env, what + " must be a Dataset, got " + args::describe(v));
  auto core = DatasetWrap::Unwrap(v.As<Napi::Object>())->core();
  if (!core) throw Napi::Error::New(env, what + ": Dataset has been disposed");
  return core;
}

}  // namespace btm
