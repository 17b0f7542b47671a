#include "bindings/options/loss_options.h"

#include "bindings/args.h"

namespace btm::options {

LossConfig loss_options(const Napi::Object& o, const std::string& what, int64_t num_classes) {
  LossConfig loss;
  const auto kind = args::choice(o, what, "loss", std::string("ce"), {"ce", "gml", "bce"});
  loss.kind = kind == "gml" ? LossKind::GML : kind == "bce" ? LossKind::BCE : LossKind::SoftTargetCE;
  loss.logit_offsets = args::floats(o, what, "logitOffsets", num_classes, -defaults::kMaxLogitOffset, defaults::kMaxLogitOffset);
  loss.label_smoothing = args::floats(o, what, "labelSmoothing", num_classes, 0, defaults::kMaxLabelSmoothing);
  loss.class_weights = args::floats(o, what, "classWeights", num_classes, 0, defaults::kMaxClassWeight);
  loss.gml_power = args::number(o, what, "gmlPower", defaults::kGmlPower, defaults::kMinGmlPower, defaults::kMaxGmlPower);
  if (loss.kind != LossKind::SoftTargetCE && !loss.label_smoothing.empty())
    args::range_error(o.Env(), what + ": loss '" + kind + "' does not take labelSmoothing");
  if (loss.kind != LossKind::BCE && !loss.class_weights.empty())
    args::range_error(o.Env(), what + ": classWeights is for loss 'bce' (got loss '" + kind + "')");
  return loss;
}

void check_loss_data(const Napi::Env& env, const std::string& what, const LossConfig& loss, const DataCore& data,
                     int64_t num_classes) {
  if (!data.multi_label()) return;
  if (loss.kind != LossKind::BCE)
    args::range_error(env, what + ": the dataset is multi-label (multi-hot targets): loss must be 'bce', got '" +
                               std::string(loss.kind == LossKind::GML ? "gml" : "ce") + "'");
  if (data.num_targets != num_classes)
    args::range_error(env, what + ": the dataset has multi-hot targets over " + std::to_string(data.num_targets) +
                               " classes, the model has numClasses = " + std::to_string(num_classes));
}

}  // namespace btm::options
