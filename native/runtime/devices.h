// Device names: 'cpu', 'cuda' or 'cuda:N'.
#pragma once

#include <torch/torch.h>

#include <string>

namespace btm {

// Parses and checks availability; false with a message in *err when the name is bad or unavailable.
bool parse_device(const std::string& s, torch::Device* out, std::string* err);

}  // namespace btm
