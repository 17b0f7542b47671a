#include "bindings/options/loss_options.h"

#include "bindings/args.h"

namespace btm::options {

LossConfig loss_options(const Napi::Object& o, const std::string& what, int64_t num_classes) {
  LossConfig loss;
  loss.kind = args::choice(o, what, "loss", std::string("ce"), {"ce", "gml"}) == "gml" ? LossKind::GML : LossKind::SoftTargetCE;
  loss.logit_offsets = args::floats(o, what, "logitOffsets", num_classes, -defaults::kMaxLogitOffset, defaults::kMaxLogitOffset);
  loss.label_smoothing = args::floats(o, what, "labelSmoothing", num_classes, 0, defaults::kMaxLabelSmoothing);
  loss.gml_power = args::number(o, what, "gmlPower", defaults::kGmlPower, defaults::kMinGmlPower, defaults::kMaxGmlPower);
  if (loss.kind == LossKind::GML && !loss.label_smoothing.empty())
    args::range_error(o.Env(), what + ": loss 'gml' does not take labelSmoothing");
  return loss;
}

}  // namespace btm::options
