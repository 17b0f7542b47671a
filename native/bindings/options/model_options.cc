#include "bindings/options/model_options.h"

#include "bindings/args.h"
#include "bindings/options/common.h"
#include "defaults.h"

namespace btm::options {

ModelOptions model_options(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  const auto o = args::object(v, what, false);
  args::only(o, what, {"arch", "numClasses", "inChannels", "imageSize", "device", "seed"});
  std::string names;
  for (const auto& a : arch_names()) names += (names.empty() ? "" : ", ") + a;
  const auto archv = o.Get("arch");
  if (!archv.IsString()) args::type_error(env, what + ".arch must be a string (" + names + "), got " + args::describe(archv));
  ModelOptions m;
  const auto arch = archv.As<Napi::String>().Utf8Value();
  if (!find_arch(arch, &m.spec)) args::range_error(env, what + ".arch: unknown architecture '" + arch + "' (known: " + names + ")");
  m.num_classes = args::integer(o, what, "numClasses", std::nullopt, 1, defaults::kMaxClasses);
  m.in_channels = args::integer(o, what, "inChannels", defaults::kInChannels, 1, defaults::kMaxInChannels);
  m.image_size = args::integer(o, what, "imageSize", 0, 0, defaults::kMaxImageSize);
  // A ViT is built for one image size (its positional embedding): the architecture's default when
  // none is given, and a multiple of its patch size.
  if (m.image_size == 0) m.image_size = arch_default_image_size(m.spec);
  const int64_t patch = arch_patch_size(m.spec);
  if (m.image_size % patch != 0)
    args::range_error(env, what + ".imageSize: " + arch + " needs a multiple of its patch size " + std::to_string(patch) +
                               ", got " + std::to_string(m.image_size));
  m.device = device(o, what);
  m.seed = seed(o, what);
  return m;
}

}  // namespace btm::options
