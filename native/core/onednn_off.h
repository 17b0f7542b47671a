// ATen's oneDNN convolutions switched off while a model that libtorch 2.x's oneDNN 3.x crashes on runs on
// the CPU (compat::kOneDnn1x1Crashes: ResNets with bottleneck blocks, whose 1x1 convolutions make Debian's
// libdnnl 3.7 divide by zero, killing the process). ATen then takes its own convolution kernels (im2col +
// BLAS): slower, the same function, never a dead process. Debian's PyTorch 2.6 trains resnet50 the same
// way with torch.backends.mkldnn.enabled = False and dies with it on.
// The switch is process-wide (at::globalContext()), so guards count: the first turns oneDNN off, the last
// restores the setting the first found. While one lives, other CPU models of the process run without
// oneDNN too (slower, same results). A no-op on libtorch 1.x and where `needed` is false.
#pragma once

#include <ATen/Context.h>

#include <mutex>

#include "compat.h"

namespace btm {

class OneDnnOff {
 public:
  explicit OneDnnOff(bool needed) : active_(compat::kOneDnn1x1Crashes && needed) {
    if (!active_) return;
    std::lock_guard<std::mutex> lock(state().mutex);
    if (state().count++ == 0) {
      state().saved = at::globalContext().userEnabledMkldnn();
      at::globalContext().setUserEnabledMkldnn(false);
    }
  }
  ~OneDnnOff() {
    if (!active_) return;
    std::lock_guard<std::mutex> lock(state().mutex);
    if (--state().count == 0) at::globalContext().setUserEnabledMkldnn(state().saved);
  }
  OneDnnOff(const OneDnnOff&) = delete;
  OneDnnOff& operator=(const OneDnnOff&) = delete;

 private:
  struct State {
    std::mutex mutex;
    int count = 0;
    bool saved = true;
  };
  static State& state() {
    static State s;
    return s;
  }
  bool active_;
};

}  // namespace btm
