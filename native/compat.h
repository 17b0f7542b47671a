// Every difference between the libtorch versions btm-node builds against (Debian's 1.13, PyTorch
// 2.x) lives here, behind one version check; no other file tests TORCH_VERSION_*.
//   - autocast: libtorch 2.4 replaced set_autocast_gpu_dtype / set_enabled with per-device-type calls;
//   - optional: c10::optional became an alias of std::optional in 2.x; the code uses btm::compat::optional
//     where a libtorch signature takes one;
//   - oneDNN 3.x's 1x1 convolution crashes (kOneDnn1x1Crashes);
//   - headers that have moved between releases (the CPU generator, the CUDA hooks) are included here
//     only, so a move has one home.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#define BTM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace btm::compat {

#if BTM_TORCH_AT_LEAST(2, 0)
template <typename T>
using optional = std::optional<T>;
#else
template <typename T>
using optional = c10::optional<T>;
#endif

// CUDA autocast on (with `dtype`) or off.
inline void set_cuda_autocast(bool on, at::ScalarType dtype = at::kHalf) {
#if BTM_TORCH_AT_LEAST(2, 4)
  if (on) at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
  if (on) at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(on);
#endif
  if (!on) at::autocast::clear_cache();
}

// TCPStore options: libtorch 2.x serves the store through libuv by default (`useLibUV`), but Debian's
// libtorch 2.6 was built without it ("use_libuv was requested but PyTorch was build without libuv
// support"); the classic server is in every build. Off, where the field exists.
template <typename T, typename = void>
struct has_use_libuv : std::false_type {};
template <typename T>
struct has_use_libuv<T, std::void_t<decltype(std::declval<T&>().useLibUV)>> : std::true_type {};
template <typename StoreOptions>
void tcp_store_without_libuv(StoreOptions& o) {
  if constexpr (has_use_libuv<StoreOptions>::value) o.useLibUV = false;
}

// Whether the CPU's oneDNN is the 3.x of libtorch 2.x (Debian's 2.6 links libdnnl 3.7), which divides by zero
// (SIGFPE: the process dies) creating some 1x1 convolution primitives: strided 1x1 backward-data with
// 256/512 -> 1024, 512/1024 -> 2048 or 1024 -> 512 channels (resnet50's shortcuts), and in channels-last
// 1x1 convolutions of 512 -> 1024 channels even at stride 1. Debian's PyTorch 2.6 crashes the same way.
// Channels-last stays off there for models with 1x1 convolutions (ModelCore::set_perf), and bottleneck
// ResNets train and evaluate on the CPU with oneDNN's convolutions off (core/onednn_off.h).
constexpr bool kOneDnn1x1Crashes = BTM_TORCH_AT_LEAST(2, 0);

// A CPU generator seeded with `seed`.
inline torch::Generator cpu_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// The CUDA runtime and cuDNN versions libtorch was built with ("12.1", "8.9.2"), or "" when libtorch
// has no CUDA (the CPU stub throws on these queries).
inline std::string cuda_runtime_version() {
  try {
    const long v = at::detail::getCUDAHooks().versionCUDART();  // 12010 = 12.1
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  } catch (const std::exception&) {
    return "";
  }
}
inline std::string cudnn_version() {
  try {
    if (!at::detail::getCUDAHooks().hasCuDNN()) return "";
    const long v = at::detail::getCUDAHooks().versionCuDNN();  // 8902 = 8.9.2; from 9: 90100 = 9.1.0
    const long major = v >= 10000 ? v / 10000 : v / 1000, rest = v >= 10000 ? v % 10000 : v % 1000;
    return std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace btm::compat
