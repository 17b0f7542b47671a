#include "bindings/args.h"

#include <cmath>
#include <sstream>

namespace btm::args {

void type_error(const Napi::Env& env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
void range_error(const Napi::Env& env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      std::ostringstream s;
      s << v.As<Napi::Number>().DoubleValue();
      return s.str();
    }
    case napi_string: return "'" + v.As<Napi::String>().Utf8Value() + "'";
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    default:
      if (v.IsTypedArray()) return "a typed array";
      if (v.IsArray()) return "an array";
      return "an object";
  }
}

namespace {
std::string key(const std::string& what, const char* name) { return what + "." + name; }
bool absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }
std::string fmt(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}
}  // namespace

Napi::Object object(const Napi::Value& v, const std::string& what, bool allow_undefined) {
  if (allow_undefined && v.IsUndefined()) return Napi::Object::New(v.Env());
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray() || v.IsFunction())
    type_error(v.Env(), what + " must be an object, got " + describe(v));
  return v.As<Napi::Object>();
}

void only(const Napi::Object& o, const std::string& what, const std::vector<std::string>& known) {
  const auto keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const auto k = keys.Get(i).ToString().Utf8Value();
    if (o.Get(k).IsUndefined()) continue;
    bool ok = false;
    for (const auto& n : known) ok = ok || n == k;
    if (!ok) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      type_error(o.Env(), what + "." + k + " is not an option (known: " + list + ")");
    }
  }
}

double number(const Napi::Object& o, const std::string& what, const char* name, std::optional<double> def,
              double min, double max) {
  const auto v = o.Get(name);
  if (absent(v)) {
    if (def) return *def;
    type_error(o.Env(), key(what, name) + " is required (a number)");
  }
  if (!v.IsNumber()) type_error(o.Env(), key(what, name) + " must be a number, got " + describe(v));
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || x < min || x > max)
    range_error(o.Env(), key(what, name) + " must be in [" + fmt(min) + ", " + fmt(max) + "], got " + fmt(x));
  return x;
}

int64_t integer(const Napi::Object& o, const std::string& what, const char* name, std::optional<int64_t> def,
                int64_t min, int64_t max) {
  const auto v = o.Get(name);
  if (absent(v)) {
    if (def) return *def;
    type_error(o.Env(), key(what, name) + " is required (an integer)");
  }
  if (!v.IsNumber()) type_error(o.Env(), key(what, name) + " must be an integer, got " + describe(v));
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x)
    type_error(o.Env(), key(what, name) + " must be an integer, got " + fmt(x));
  if (x < static_cast<double>(min) || x > static_cast<double>(max))
    range_error(o.Env(), key(what, name) + " must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                             "], got " + fmt(x));
  return static_cast<int64_t>(x);
}

bool boolean(const Napi::Object& o, const std::string& what, const char* name, bool def) {
  const auto v = o.Get(name);
  if (absent(v)) return def;
  if (!v.IsBoolean()) type_error(o.Env(), key(what, name) + " must be a boolean, got " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

std::string choice(const Napi::Object& o, const std::string& what, const char* name, std::optional<std::string> def,
                   const std::vector<std::string>& allowed) {
  const auto v = o.Get(name);
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "'" : ", '") + a + "'";
  if (absent(v)) {
    if (def) return *def;
    type_error(o.Env(), key(what, name) + " is required (one of " + list + ")");
  }
  if (!v.IsString()) type_error(o.Env(), key(what, name) + " must be one of " + list + ", got " + describe(v));
  const auto s = v.As<Napi::String>().Utf8Value();
  for (const auto& a : allowed)
    if (a == s) return s;
  range_error(o.Env(), key(what, name) + " must be one of " + list + ", got '" + s + "'");
}

std::vector<float> floats(const Napi::Object& o, const std::string& what, const char* name, int64_t len,
                          double min, double max) {
  const auto v = o.Get(name);
  if (absent(v)) return {};
  std::vector<float> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    const auto a = v.As<Napi::Float32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (v.IsArray()) {
    const auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const auto e = a.Get(i);
      if (!e.IsNumber())
        type_error(o.Env(), key(what, name) + "[" + std::to_string(i) + "] must be a number, got " + describe(e));
      out.push_back(static_cast<float>(e.As<Napi::Number>().DoubleValue()));
    }
  } else {
    type_error(o.Env(), key(what, name) + " must be a Float32Array or an array of numbers, got " + describe(v));
  }
  if (len >= 0 && static_cast<int64_t>(out.size()) != len)
    range_error(o.Env(), key(what, name) + " must have length " + std::to_string(len) + ", got " +
                             std::to_string(out.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]) || out[i] < min || out[i] > max)
      range_error(o.Env(), key(what, name) + "[" + std::to_string(i) + "] must be in [" + fmt(min) + ", " +
                               fmt(max) + "], got " + fmt(out[i]));
  }
  return out;
}

std::vector<int64_t> indices(const Napi::Value& v, const std::string& what, int64_t n) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    type_error(v.Env(), what + " must be an Int32Array, got " + describe(v));
  const auto a = v.As<Napi::Int32Array>();
  std::vector<int64_t> out(a.ElementLength());
  const int32_t* d = a.Data();
  for (size_t i = 0; i < out.size(); ++i) {
    if (d[i] < 0 || d[i] >= n)
      range_error(v.Env(), what + "[" + std::to_string(i) + "] = " + std::to_string(d[i]) + " out of range [0, " +
                               std::to_string(n) + ")");
    out[i] = d[i];
  }
  return out;
}

}  // namespace btm::args
