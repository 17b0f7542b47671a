// State dicts between libtorch and JS: tensors to {name, shape, dtype, data} entries, and strict
// loading of such entries into live tensors (every name present, none extra, same shape and dtype,
// all differences listed in one error).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace btm {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Copies of `entries` as JS {name, shape, dtype: 'float32'|'int64', data} objects.
Napi::Array entries_to_js(Napi::Env env, const NamedTensors& entries);

// Copies JS entries `v` into the tensors of `state`, in place. `where` prefixes messages; `mismatch`
// completes "<where>: state <mismatch> (N problem(s)): ...".
void load_strict(const Napi::Value& v, const std::string& where, const std::string& mismatch, const NamedTensors& state);

}  // namespace btm
