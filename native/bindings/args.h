// Argument checking for the bindings: every value is checked here, before libtorch sees it, and a bad
// one throws a JS TypeError (wrong type) or RangeError (wrong value) that names the argument.
#pragma once

#include <napi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace btm::args {

[[noreturn]] void type_error(const Napi::Env& env, const std::string& msg);
[[noreturn]] void range_error(const Napi::Env& env, const std::string& msg);

// Options objects: `what` is the argument path used in messages, e.g. "trainEpoch: options".
Napi::Object object(const Napi::Value& v, const std::string& what, bool allow_undefined = true);

// Throws TypeError "<what>.<key> is not an option (known: ...)" for any own key not in `known`.
void only(const Napi::Object& o, const std::string& what, const std::vector<std::string>& known);

// Present-or-default getters. `name` is the key; messages read "<what>.<name> must be ...".
double number(const Napi::Object& o, const std::string& what, const char* name, std::optional<double> def,
              double min, double max);
int64_t integer(const Napi::Object& o, const std::string& what, const char* name, std::optional<int64_t> def,
                int64_t min, int64_t max);
bool boolean(const Napi::Object& o, const std::string& what, const char* name, bool def);
std::string choice(const Napi::Object& o, const std::string& what, const char* name, std::optional<std::string> def,
                   const std::vector<std::string>& allowed);
// A Float32Array or an array of numbers; every element finite and in [min, max]. Empty result when
// the key is absent (undefined/null) and len_required == 0 is not enforced.
std::vector<float> floats(const Napi::Object& o, const std::string& what, const char* name, int64_t len,
                          double min, double max);

// An Int32Array of indices, each in [0, n).
std::vector<int64_t> indices(const Napi::Value& v, const std::string& what, int64_t n);

std::string describe(const Napi::Value& v);

}  // namespace btm::args
