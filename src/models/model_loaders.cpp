// Loaders and thin wrappers behind include/emo/models.h.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/key_rename.h"
#include "emo/models.h"
#include "emo/weight_loader.h"
#include "models/autoencoder_kl.h"
#include "models/unet_2d_condition.h"

namespace emo {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ModelError(path + ": cannot open model config");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(path + ": invalid JSON: " + e.what());
  }
}

std::string weights_in(const std::string& dir) {
  for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"}) {
    auto p = fs::path(dir) / name;
    if (fs::exists(p)) return p.string();
  }
  throw ModelError(dir + ": no diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin");
}

}  // namespace

Vae::Vae(std::shared_ptr<models::AutoencoderKLImpl> impl) : impl_(std::move(impl)) {}

double Vae::scaling_factor() const { return impl_->config().scaling_factor; }

int64_t Vae::downscale() const {
  return int64_t{1} << (static_cast<int64_t>(impl_->config().block_out_channels.size()) - 1);
}

at::Tensor Vae::encode_mean(const at::Tensor& images) const {
  c10::InferenceMode guard;
  if (!channels_last_) return impl_->encode(images).first;
  return impl_->encode(images.contiguous(at::MemoryFormat::ChannelsLast)).first.contiguous();  // [N, 4, h, w]
}

at::Tensor Vae::encode_latents(const at::Tensor& images) const { return encode_mean(images) * scaling_factor(); }

void Vae::decode_latents(const at::Tensor& latents, int64_t chunk,
                         const std::function<void(int64_t, const at::Tensor&)>& sink) const {
  c10::InferenceMode guard;
  const double s = scaling_factor();
  // [B, C, F, h, w] video latents -> [(B F), C, h, w] (hallo: rearrange "b c f h w -> (b f) c h w")
  const auto flat = latents.dim() == 5 ? latents.transpose(1, 2).flatten(0, 1) : latents;
  if (flat.dim() != 4) throw InputError("vae: latents must be [N, C, h, w] or [B, C, F, h, w]");
  const int64_t n = flat.size(0);
  if (chunk <= 0) chunk = n;
  for (int64_t first = 0; first < n; first += chunk) {
    auto z = flat.slice(0, first, std::min(n, first + chunk)) / s;     // [n, 4, h, w]
    if (!channels_last_) {
      sink(first, impl_->decode(z));                                    // [n, 3, H, W]
      continue;
    }
    sink(first, impl_->decode(z.contiguous(at::MemoryFormat::ChannelsLast)).contiguous());  // [n, 3, H, W] NCHW
  }
}

at::Tensor Vae::decode_latents(const at::Tensor& latents, int64_t chunk) const {
  std::vector<at::Tensor> parts;
  decode_latents(latents, chunk, [&](int64_t, const at::Tensor& x) { parts.push_back(x); });
  c10::InferenceMode guard;
  return torch::cat(parts, 0);
}

void Vae::to(c10::Device device, c10::ScalarType dtype) {
  impl_->to(device, dtype);
  if (channels_last_) {  // .to() keeps the strides of each weight, but re-apply in case a conversion copied
    channels_last_ = false;
    use_channels_last(true);
  }
}

void Vae::use_channels_last(bool on) {
  if (on == channels_last_) return;
  torch::NoGradGuard no_grad;
  const auto fmt = on ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& p : impl_->parameters())
    if (p.dim() == 4) p.set_data(p.detach().contiguous(fmt));  // conv weights [Cout, Cin, kh, kw]
  channels_last_ = on;
}

Vae load_vae(const std::string& dir) {
  const auto cfg_path = (fs::path(dir) / "config.json").string();
  auto cfg = models::AutoencoderKLConfig::from_json(read_config(cfg_path), cfg_path);
  auto vae = std::make_shared<models::AutoencoderKLImpl>(cfg);
  const auto wpath = weights_in(dir);
  auto sd = io::rename_keys(io::load_state_dict(wpath), io::KeyScheme::kVaeLegacyAttention);
  io::LoadOptions opt;
  opt.source = wpath;
  io::load_module(*vae, sd, opt);
  vae->eval();
  return Vae(vae);
}

ReferenceNet::ReferenceNet(std::shared_ptr<models::UNet2DConditionModelImpl> impl) : impl_(std::move(impl)) {}

std::vector<at::Tensor> ReferenceNet::write_banks(const at::Tensor& sample, const at::Tensor& timestep,
                                                  const at::Tensor& ehs) const {
  c10::InferenceMode guard;
  return impl_->write_banks(sample, timestep, ehs);
}

void ReferenceNet::to(c10::Device device, c10::ScalarType dtype) { impl_->to(device, dtype); }

ReferenceNet load_reference_unet(const std::string& config_json, const io::StateDict& weights,
                                 const std::string& prefix) {
  auto cfg = models::UNet2DConditionConfig::from_json(read_config(config_json), config_json);
  cfg.reference_net = true;
  auto net = std::make_shared<models::UNet2DConditionModelImpl>(cfg);
  io::LoadOptions opt;
  opt.prefix = prefix;
  opt.source = "reference UNet weights (prefix '" + prefix + "')";
  io::load_module(*net, weights, opt);
  net->eval();
  return ReferenceNet(net);
}

std::shared_ptr<models::UNet2DConditionModelImpl> load_unet2d(const std::string& dir) {
  const auto cfg_path = (fs::path(dir) / "config.json").string();
  auto cfg = models::UNet2DConditionConfig::from_json(read_config(cfg_path), cfg_path);
  auto net = std::make_shared<models::UNet2DConditionModelImpl>(cfg);
  const auto wpath = weights_in(dir);
  io::LoadOptions opt;
  opt.source = wpath;
  io::load_module(*net, io::load_state_dict(wpath), opt);
  net->eval();
  return net;
}

std::string describe_diffusers_config(const std::string& config_json) {
  auto j = read_config(config_json);
  const std::string cls = j.value("_class_name", std::string());
  const bool vae = cls == "AutoencoderKL" || (cls.empty() && j.contains("latent_channels"));
  const bool unet = cls == "UNet2DConditionModel" || (cls.empty() && j.contains("cross_attention_dim"));
  if (vae) return models::AutoencoderKLConfig::from_json(j, config_json).summary();
  if (unet) return models::UNet2DConditionConfig::from_json(j, config_json).summary();
  return {};
}

}  // namespace emo
