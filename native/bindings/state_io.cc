#include "bindings/state_io.h"

#include <cstring>
#include <unordered_map>

#include "bindings/args.h"
#include "bindings/binding.h"

namespace btm {

namespace {

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

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

Napi::Array entries_to_js(Napi::Env env, const NamedTensors& entries) {
  auto out = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) out.Set(uint32_t(i), tensor_entry(env, entries[i].first, entries[i].second));
  return out;
}

void load_strict(const Napi::Value& v, const std::string& where, const std::string& mismatch, const NamedTensors& state) {
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

}  // namespace btm
