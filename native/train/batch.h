// Building training batches on the device: gather by index, augment (random crop + flip), convert
// to normalised float input, mix up.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config.h"
#include "core/data_core.h"

namespace btm {

// One training batch: input `x`, labels `y`, and with mixup the partner labels `y_mix` weighted 1 - lam.
// From a multi-label set: `y` / `y_mix` undefined, and `t` the float targets [B, K], mixed with the
// partners' by mixup as the images are: t = lam t_a + (1 - lam) t_b.
struct Batch {
  torch::Tensor x, y, y_mix, t;
  double lam = 1.0;
  double share = 1.0;  // this rank's part of the global batch, n_r / N (1 without parts)
};

// The batches of one epoch over `indices`, in order, drawing augmentation and mixup from `gen`.
// With cfg.parts > 1 (data-parallel global batches), every batch of `indices` is a global batch: the
// random draws (crop offsets, flips, mixup's lambda and permutation) are made for the whole global
// batch, exactly as one process draws them, and only part cfg.part of it is built: rows
// [floor(p L / P), floor((p + 1) L / P)) of a global batch of L, mixed with their partners wherever
// those are in the global batch (gathered from the whole dataset, which every rank holds). So the
// part equals those rows of the batch one process builds, bit for bit.
class BatchMaker {
 public:
  BatchMaker(const DataCore& data, const std::vector<int64_t>& indices, const TrainConfig& cfg, bool channels_last,
             torch::Generator& gen);
  int64_t steps() const { return steps_; }
  int64_t samples() const { return samples_; }
  Batch next();

 private:
  Batch next_part(int64_t start, int64_t len);

  const DataCore& data_;
  const TrainConfig& cfg_;
  bool channels_last_;
  torch::Generator& gen_;
  torch::Tensor idx_;
  int64_t n_, steps_, samples_, step_ = 0;
};

// uint8 batch -> float on [0,1], normalised per channel, in the model's memory format.
torch::Tensor to_input(const torch::Tensor& x_u8, const Normalize& norm, const torch::Device& device, bool channels_last);

// Random crop with zero padding and random horizontal flip, per sample, as one gather on the device.
torch::Tensor augment(const torch::Tensor& x, int64_t pad, bool hflip, torch::Generator& gen);

// augment() in two halves: the draws for B samples (CPU int64 crop offsets, bool flips), and their
// application to a batch (row i takes draw i).
struct AugmentDraw {
  torch::Tensor oy, ox, flip;
};
AugmentDraw draw_augment(int64_t B, int64_t pad, bool hflip, torch::Generator& gen);
torch::Tensor apply_augment(const torch::Tensor& x, int64_t pad, const AugmentDraw& draw);

// The part [floor(p L / P), floor((p + 1) L / P)) of a global batch of L samples.
inline std::pair<int64_t, int64_t> batch_part(int64_t L, int64_t p, int64_t P) { return {p * L / P, (p + 1) * L / P}; }

// A Beta(alpha, alpha) draw.
double sample_beta(double alpha, torch::Generator& gen);

// Indices as an int64 tensor on `device`.
torch::Tensor index_tensor(const std::vector<int64_t>& idx, const torch::Device& device);

// A float vector on `device` (undefined when empty).
torch::Tensor vec_tensor(const std::vector<float>& v, const torch::Device& device);

}  // namespace btm
