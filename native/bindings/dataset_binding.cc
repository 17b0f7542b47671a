// Dataset: uint8 NCHW images and int labels uploaded once to a device.
#include <cstring>

#include "bindings/args.h"
#include "bindings/binding.h"
#include "bindings/options/common.h"

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
                        InstanceAccessor<&DatasetWrap::MaxLabel>("maxLabel")});
  }

  // new Dataset(images: Uint8Array, labels: Int32Array, {n, channels, height, width, device})
  explicit DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
    Napi::Env env = info.Env();
    const std::string what = "Dataset";
    const auto imgs = info[0];
    if (!imgs.IsTypedArray() || imgs.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      args::type_error(env, what + ": images must be a Uint8Array (NCHW), got " + args::describe(imgs));
    const auto labs = info[1];
    if (!labs.IsTypedArray() || labs.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      args::type_error(env, what + ": labels must be an Int32Array, got " + args::describe(labs));
    const auto opts = args::object(info[2], what + ": shape", false);
    args::only(opts, what, {"n", "channels", "height", "width", "device"});
    const int64_t kMax = int64_t(1) << 31;
    const int64_t n = args::integer(opts, what, "n", std::nullopt, 0, kMax);
    const int64_t c = args::integer(opts, what, "channels", std::nullopt, 1, 4096);
    const int64_t h = args::integer(opts, what, "height", std::nullopt, 1, 65536);
    const int64_t w = args::integer(opts, what, "width", std::nullopt, 1, 65536);
    auto images = imgs.As<Napi::Uint8Array>();
    auto labels = labs.As<Napi::Int32Array>();
    int64_t bytes = 0;
    if (__builtin_mul_overflow(n, c, &bytes) || __builtin_mul_overflow(bytes, h, &bytes) ||
        __builtin_mul_overflow(bytes, w, &bytes) || bytes > (int64_t(1) << 46))
      args::range_error(env, what + ": shape " + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) +
                                 "x" + std::to_string(w) + " is too large");
    if (static_cast<int64_t>(images.ElementLength()) != bytes)
      args::range_error(env, what + ": images has " + std::to_string(images.ElementLength()) +
                                 " bytes, expected n*channels*height*width = " + std::to_string(bytes));
    if (static_cast<int64_t>(labels.ElementLength()) != n)
      args::range_error(env, what + ": labels has " + std::to_string(labels.ElementLength()) +
                                 " entries, expected n = " + std::to_string(n));
    int32_t max_label = -1;
    const int32_t* lab = labels.Data();
    for (int64_t i = 0; i < n; ++i) {
      if (lab[i] < 0)
        args::range_error(env, what + ": labels[" + std::to_string(i) + "] = " + std::to_string(lab[i]) + " is negative");
      max_label = std::max(max_label, lab[i]);
    }
    const torch::Device device = options::device(opts, what);
    core_ = guarded(env, what, [&] {
      auto d = std::make_shared<DataCore>();
      d->n = n, d->c = c, d->h = h, d->w = w, d->max_label = max_label, d->device = device;
      d->images = torch::from_blob(images.Data(), {n, c, h, w}, torch::kUInt8).clone().to(device);
      d->labels = torch::from_blob(labels.Data(), {n}, torch::kInt).to(torch::kLong).to(device);
      return d;
    });
    bytes_ = n * c * h * w + n * 8;
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

  std::shared_ptr<DataCore> core_;
  int64_t bytes_ = 0;
};

}  // namespace

void init_dataset(Napi::Env env, Napi::Object exports, AddonData* data) {
  auto ctor = DatasetWrap::Define(env);
  data->dataset_ctor = Napi::Persistent(ctor);
  exports.Set("Dataset", ctor);
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
