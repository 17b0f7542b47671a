#include "runtime/devices.h"

#include <regex>

namespace btm {

void set_cuda_deterministic(bool on) {
  auto& ctx = at::globalContext();
  ctx.setDeterministicCuDNN(on);
  ctx.setAllowTF32CuDNN(!on);
  if (on) ctx.setBenchmarkCuDNN(false);
}

bool parse_device(const std::string& s, torch::Device* out, std::string* err) {
  static const std::regex re("^(cpu|cuda)(?::([0-9]{1,3}))?$");
  std::smatch m;
  if (!std::regex_match(s, m, re) || (m[1] == "cpu" && m[2].matched)) {
    *err = "device must be 'cpu', 'cuda' or 'cuda:N', got '" + s + "'";
    return false;
  }
  if (m[1] == "cpu") {
    *out = torch::Device(torch::kCPU);
    return true;
  }
  if (!torch::cuda::is_available()) {
    *err = "device '" + s + "' requested but CUDA is not available (libtorch built without CUDA, or no GPU visible)";
    return false;
  }
  const int idx = m[2].matched ? std::stoi(m[2]) : 0;
  const int count = static_cast<int>(torch::cuda::device_count());
  if (idx >= count) {
    *err = "device '" + s + "' out of range: " + std::to_string(count) + " CUDA device(s) visible";
    return false;
  }
  *out = torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(idx));
  return true;
}

}  // namespace btm
