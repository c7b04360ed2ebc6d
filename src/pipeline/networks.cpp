#include "pipeline/networks.h"

#include <algorithm>

#include "nn/attention.h"
#include "nn/layers.h"

#include "emo/error.h"
#include "emo/key_rename.h"
#include "models/autoencoder_kl.h"
#include "emo/scheduler.h"
#include "emo/weight_loader.h"
#include "pipeline/stage_clock.h"

namespace emo::pipeline {

namespace {
const torch::Tensor& need(const io::StateDict& sd, const std::string& key) {
  auto it = sd.find(key);
  if (it == sd.end()) throw ModelError("net weights: missing '" + key + "'");
  return it->second;
}
}  // namespace

models::FaceLocatorConfig detect_face_locator(const io::StateDict& sd, const std::string& p) {
  models::FaceLocatorConfig c;
  const auto& w_in = need(sd, p + "conv_in.weight");    // [c0, cond, 3, 3]
  const auto& w_out = need(sd, p + "conv_out.weight");  // [emb, c_last, 3, 3]
  c.conditioning_channels = w_in.size(1);
  c.conditioning_embedding_channels = w_out.size(0);
  c.block_out_channels = {w_in.size(0)};
  for (int i = 1;; i += 2) {  // blocks.{1,3,5}: the stride-2 convs change the width
    auto it = sd.find(p + "blocks." + std::to_string(i) + ".weight");
    if (it == sd.end()) break;
    c.block_out_channels.push_back(it->second.size(0));
  }
  return c;
}

models::ImageProjModelConfig detect_image_proj(const io::StateDict& sd, const std::string& p) {
  models::ImageProjModelConfig c;
  const auto& w = need(sd, p + "proj.weight");     // [tokens * D, E]
  const auto& n = need(sd, p + "norm.weight");     // [D]
  c.cross_attention_dim = n.size(0);
  c.clip_embeddings_dim = w.size(1);
  c.clip_extra_context_tokens = w.size(0) / n.size(0);
  return c;
}

models::AudioProjConfig detect_audio_proj(const io::StateDict& sd, const std::string& p, int64_t window) {
  models::AudioProjConfig c;
  const auto& w1 = need(sd, p + "proj1.weight");  // [intermediate, window * blocks * channels]
  const auto& w3 = need(sd, p + "proj3.weight");  // [tokens * out, intermediate]
  const auto& n = need(sd, p + "norm.weight");    // [out]
  c.seq_len = window;
  c.intermediate_dim = w1.size(0);
  c.output_dim = n.size(0);
  c.context_tokens = w3.size(0) / n.size(0);
  // blocks * channels = in / window; channels is the wav2vec2 width, set by the caller when known.
  c.blocks = 0;
  c.channels = w1.size(1) / window;
  return c;
}

std::unique_ptr<Networks> Networks::load(const ModelSpec& spec, const io::StateDict& net, torch::Device device,
                                         torch::ScalarType dtype) {
  nlohmann::json kwargs = spec.unet_additional_kwargs;
  kwargs["n_sample_frames"] = spec.preset.clip_frames;
  kwargs["n_motion_frames"] = spec.preset.motion_frames;
  // Every Linear / Conv2d parameter is allocated empty in its final dtype and device and then filled by the
  // strict loader (which fails on any key it cannot fill): no default initialisation of 2.4 B parameters.
  nn::UninitializedParameters uninitialized(torch::TensorOptions().dtype(dtype).device(device));
  return build(spec.paths.unet_config, spec.unet_config, kwargs, net, spec.paths.net, load_vae(spec.paths.vae_dir),
               spec.wav2vec_config.value("hidden_size", int64_t{768}), device, dtype);
}

Vae vae_from_parts(const nlohmann::json& config, const io::StateDict& weights, const std::string& source) {
  auto vae = std::make_shared<models::AutoencoderKLImpl>(models::AutoencoderKLConfig::from_json(config, source));
  auto sd = io::rename_keys(weights, io::KeyScheme::kVaeLegacyAttention);
  io::load_module(*vae, sd, {"", true, {}, source});
  vae->eval();
  return Vae(vae);
}

std::unique_ptr<Networks> Networks::build(const std::string& unet_config_path, const nlohmann::json& unet_config,
                                          const nlohmann::json& kwargs, const io::StateDict& net,
                                          const std::string& src, Vae vae, int64_t hidden, torch::Device device,
                                          torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  auto n = std::make_unique<Networks>();
  n->device = device;
  n->dtype = dtype;

  n->reference.emplace(load_reference_unet(unet_config_path, net, "reference_unet."));
  n->reference->to(device, dtype);

  // Speed layers are on exactly when net holds speed_encoder.* weights (read_widths_from decides).
  auto ucfg = models::UNet3DConditionModelConfig::from_json(unet_config, kwargs);
  ucfg.read_widths_from(net, "denoising_unet.");
  n->unet = models::UNet3DConditionModel(ucfg);
  n->unet->to(device, dtype);  // first: the file's tensors are then converted once, straight into place
  io::load_module(*n->unet, net, {"denoising_unet.", true, {}, src});

  n->face_locator = models::FaceLocator(detect_face_locator(net, "face_locator."));
  io::load_module(*n->face_locator, net, {"face_locator.", true, {}, src});
  n->face_locator->to(device, dtype);

  n->image_proj = models::ImageProjModel(detect_image_proj(net, "imageproj."));
  io::load_module(*n->image_proj, net, {"imageproj.", true, {}, src});
  n->image_proj->to(device, dtype);

  auto acfg = detect_audio_proj(net, "audioproj.", 5);
  const int64_t in_width = need(net, "audioproj.proj1.weight").size(1);
  acfg.channels = hidden;
  acfg.blocks = in_width / (acfg.seq_len * hidden);
  if (acfg.blocks * acfg.seq_len * hidden != in_width)
    throw ModelError(src + ": audioproj.proj1 input width " + std::to_string(in_width) +
                     " is not 5 x layers x wav2vec2 hidden_size " + std::to_string(hidden));
  n->audio_proj = models::AudioProjModel(acfg);
  io::load_module(*n->audio_proj, net, {"audioproj.", true, {}, src});
  n->audio_proj->to(device, dtype);

  vae.to(device, dtype);  // NCHW; Pipeline::load applies --vae-layout
  n->vae.emplace(std::move(vae));
  return n;
}

torch::Tensor Networks::place(const torch::Tensor& t) const {
  if (!t.defined()) return t;
  if (t.is_floating_point()) return t.to(device, dtype);
  return t.to(device);
}

void check_placed(const Networks& nets, const torch::Tensor& t, const char* what) {
  if (!t.defined()) return;
  const bool device_ok = t.device() == nets.device;
  const bool dtype_ok = !t.is_floating_point() || t.scalar_type() == nets.dtype;
  if (device_ok && dtype_ok) return;
  throw Error(ExitCode::kFailure, std::string("device guard: ") + what + " is " + t.device().str() + "/" +
                                      c10::toString(t.scalar_type()) + " but the networks run on " +
                                      nets.device.str() + "/" + c10::toString(nets.dtype) +
                                      " (per-job inputs must go through Networks::place)");
}

void check_placement(const Networks& nets, const ClipInputs& in) {
  check_placed(nets, in.ref_pixels, "ref_pixels");
  check_placed(nets, in.face_tokens, "face_tokens");
  check_placed(nets, in.face_locator, "face_locator");
  for (int l = 0; l < 4; ++l) {
    check_placed(nets, in.full_mask[l], "full_mask");
    check_placed(nets, in.face_mask[l], "face_mask");
    check_placed(nets, in.lip_mask[l], "lip_mask");
  }
  check_placed(nets, in.audio_windows, "audio_windows");
  check_placed(nets, in.initial_latents, "initial_latents");
  check_placed(nets, in.head_speed, "head_speed");
}

torch::Tensor face_tokens(Networks& nets, const torch::Tensor& face_emb) {
  check_placed(nets, face_emb, "face_emb");
  auto e = face_emb.reshape({1, -1});                                               // [1, E]
  auto both = torch::cat({torch::zeros_like(e), e}, 0);                             // [2, E] uncond, cond
  return nets.image_proj->forward(both);                                            // [2, T, D]
}

torch::Tensor face_locator_features(Networks& nets, const torch::Tensor& face_region, int64_t frames) {
  // hallo: face_mask (1, 3, H, W) -> unsqueeze(1) -> repeat over f -> transpose(1, 2) = (1, 3, f, H, W), then the
  // face locator's convolutions frame by frame: every frame is the same image, so one frame is computed and
  // broadcast over the F frames (a stride-0 view; the CFG concatenation copies it once per clip).
  check_placed(nets, face_region, "face_region");
  auto one = nets.face_locator->forward(face_region.unsqueeze(2));                  // [1, C0, 1, h, w]
  return one.expand({-1, -1, frames, -1, -1});                                      // [1, C0, F, h, w]
}

ReferencePass reference_pass(Networks& nets, const ClipInputs& in, const torch::Tensor& tokens) {
  const auto dev = nets.device;
  const int64_t halves = tokens.size(0);
  ReferencePass out;
  auto& ref_latents = out.ref_latents;
  auto& banks = out.banks;
  const int64_t n = in.ref_pixels.size(0);                                          // 1 + M
  const auto source = in.ref_pixels[0];                                             // [3, H, W]
  std::vector<int64_t> image_of(n, 0);  // image_of[i]: 0 when image i equals the source, else i
  torch::Tensor latents_of;             // [distinct images, 4, h, w], row k = image distinct[k]
  std::vector<int64_t> distinct;
  ReferenceCache* cache = in.reference_cache;
  bool cached = false;
  {
    StageClock::Scope sc(in.clock, "vae_encode");
    auto ref_pixels = in.ref_pixels;                                                // [1+M, 3, H, W]
    // One host read per clip (the preprocessing rule and which motion frames are the source), never per step.
    auto flags = torch::cat({(ref_pixels.min() >= 0).reshape({1}),
                             n > 1 ? (ref_pixels.slice(0, 1) == source).flatten(1).all(1)
                                   : torch::zeros({0}, torch::TensorOptions().dtype(torch::kBool).device(dev))})
                     .to(torch::kCPU);
    const bool mapped = flags[0].item<bool>();
    for (int64_t i = 1; i < n; ++i) image_of[i] = flags[i].item<bool>() ? 0 : i;
    if (mapped) ref_pixels = ref_pixels * 2 - 1;
    cached = cache && cache->latent.defined() && cache->mapped == mapped && cache->source.sizes() == source.sizes() &&
             torch::equal(cache->source, source);
    std::vector<int64_t> to_encode;
    for (int64_t i = 0; i < n; ++i)
      if (image_of[i] == i && (i > 0 || !cached)) to_encode.push_back(i);
    torch::Tensor encoded;
    if (!to_encode.empty())
      encoded = nets.vae->encode_latents(ref_pixels.index_select(
          0, torch::tensor(to_encode, torch::TensorOptions().dtype(torch::kLong)).to(dev)));  // [k, 4, h, w]
    std::vector<torch::Tensor> rows;
    if (cached) {
      rows.push_back(cache->latent);
      distinct.push_back(0);
    }
    if (encoded.defined()) {
      rows.push_back(encoded);
      distinct.insert(distinct.end(), to_encode.begin(), to_encode.end());
    }
    latents_of = rows.size() == 1 ? rows[0] : torch::cat(rows, 0);                  // [distinct, 4, h, w]
    std::vector<int64_t> pick(n);
    for (int64_t i = 0; i < n; ++i)
      pick[i] = std::find(distinct.begin(), distinct.end(), image_of[i]) - distinct.begin();
    ref_latents = latents_of.index_select(0, torch::tensor(pick, torch::TensorOptions().dtype(torch::kLong)).to(dev));
    if (cache && !cached) {
      *cache = ReferenceCache{};  // a new source: every cached row goes
      cache->source = source.clone();
      cache->mapped = mapped;
      cache->latent = latents_of.slice(0, 0, 1).clone();                            // distinct[0] == 0
    }
  }

  StageClock::Scope sc(in.clock, "reference_net");
  if (cache && !(cache->tokens.defined() && cache->tokens.sizes() == tokens.sizes() && torch::equal(cache->tokens, tokens))) {
    cache->tokens = tokens.clone();
    cache->source_rows.assign(halves, {});
  }
  // Batch row j of hallo's pass: image image_of[j % n] with token row j % halves. Distinct pairs in first-seen order.
  std::vector<std::pair<int64_t, int64_t>> pairs;  // (image, token row)
  std::vector<int64_t> row_of(halves * n);
  for (int64_t j = 0; j < halves * n; ++j) {
    std::pair<int64_t, int64_t> p{image_of[j % n], j % halves};
    auto it = std::find(pairs.begin(), pairs.end(), p);
    if (it == pairs.end()) it = pairs.insert(pairs.end(), p);
    row_of[j] = it - pairs.begin();
  }
  auto from_cache = [&](const std::pair<int64_t, int64_t>& p) {
    return cache && p.first == 0 && !cache->source_rows[p.second].empty();
  };
  std::vector<int64_t> lat_rows, tok_rows, computed_at(pairs.size(), -1);
  for (size_t k = 0; k < pairs.size(); ++k) {
    if (from_cache(pairs[k])) continue;
    computed_at[k] = static_cast<int64_t>(lat_rows.size());
    lat_rows.push_back(std::find(distinct.begin(), distinct.end(), pairs[k].first) - distinct.begin());
    tok_rows.push_back(pairs[k].second);
  }
  std::vector<torch::Tensor> computed;
  if (!lat_rows.empty()) {
    const auto lopt = torch::TensorOptions().dtype(torch::kLong);
    computed = nets.reference->write_banks(latents_of.index_select(0, torch::tensor(lat_rows, lopt).to(dev)),
                                           torch::zeros({}, lopt.device(dev)),
                                           tokens.index_select(0, torch::tensor(tok_rows, lopt).to(dev)));  // [P, L, C]
  }
  const size_t count = computed.empty() ? cache->source_rows[pairs[0].second].size() : computed.size();
  auto piece = [&](size_t k, size_t b) {                                            // [1, L, C]
    return computed_at[k] < 0 ? cache->source_rows[pairs[k].second][b]
                              : computed[b].slice(0, computed_at[k], computed_at[k] + 1);
  };
  banks.resize(count);
  for (size_t b = 0; b < count; ++b) {
    std::vector<torch::Tensor> rows;
    rows.reserve(row_of.size());
    for (int64_t k : row_of) rows.push_back(piece(k, b));
    banks[b] = torch::cat(rows, 0);                                                 // [halves (1+M), L, C]
  }
  if (cache)  // the source image's rows, for the next clips
    for (size_t k = 0; k < pairs.size(); ++k)
      if (pairs[k].first == 0 && computed_at[k] >= 0) {
        auto& dst = cache->source_rows[pairs[k].second];
        dst.clear();
        for (size_t b = 0; b < count; ++b) dst.push_back(piece(k, b).clone());
      }
  return out;
}

torch::Tensor denoise_clip(Networks& nets, const nlohmann::json& scheduler_kwargs, const ClipInputs& in,
                           const StepCallback& on_step, ClipTrace* trace) {
  const auto dev = nets.device;
  check_placement(nets, in);
  const int64_t frames = in.initial_latents.size(2);

  // guidance_scale > 1: the CFG batch [uncond, cond] (hallo do_classifier_free_guidance). Otherwise hallo's
  // no-guidance path with its one crash fixed (shared/golden/pipeline_clips_cfg1): batch 1, conditional tokens only,
  // and every row of every spatial block reads the reference banks (no uc_mask).
  const bool cfg = in.guidance_scale > 1.0;
  const int64_t halves = cfg ? 2 : 1;
  auto tokens = cfg ? in.face_tokens : in.face_tokens.slice(0, 1, 2);              // [halves, T, D]

  // ReferenceNet once per clip on [ref, motion frames] (x2 with CFG), timestep 0, image tokens [uncond, cond] / [cond].
  auto [ref_latents, banks] = reference_pass(nets, in, tokens);
  if (trace) trace->ref_latents = ref_latents;
  if (in.zero_motion_banks) {
    const int64_t per_half = ref_latents.size(0);
    for (auto& b : banks) {
      auto v = b.view({halves, per_half, b.size(1), b.size(2)}).clone();            // [halves, 1+M, L, C]
      v.slice(1, 1).zero_();
      b = v.view_as(b);
    }
  }
  nets.unet->set_reference_banks(banks);

  // Conditioning shared by every step (constant within the clip).
  models::UNet3DConditions cond;
  cond.encoder_hidden_states = tokens;                                              // [halves, T, D]
  torch::Tensor audio;
  {
    StageClock::Scope sc(in.clock, "audio_proj");
    audio = nets.audio_proj->forward(in.audio_windows.unsqueeze(0));                // [1, F, 32, 768]
  }
  if (trace) trace->audio_tokens = audio;
  cond.audio_embedding = cfg ? torch::cat({torch::zeros_like(audio), audio}, 0) : audio;  // [halves, F, 32, 768]
  cond.uncond_audio_is_zero = cfg;  // the zeros above: the unconditional half's audio attention is not computed
  // Image-token and audio-token keys/values: projected by the first step, reused by the others.
  cond.context_kv = std::make_shared<nn::ContextKvCache>();
  cond.mask_cond_fea = cfg ? torch::cat({torch::zeros_like(in.face_locator), in.face_locator}, 0) : in.face_locator;
  for (int l = 0; l < 4; ++l) {
    auto rep = [&](const torch::Tensor& m) {
      auto r = m.repeat({frames, 1});                                               // [F, HW]
      return cfg ? torch::cat({r, r}, 0) : r;                                       // [halves F, HW]
    };
    cond.full_mask.push_back(rep(in.full_mask[l]));
    cond.face_mask.push_back(rep(in.face_mask[l]));
    cond.lip_mask.push_back(rep(in.lip_mask[l]));
  }
  cond.motion_scale = in.motion_scale;
  if (in.head_speed.defined()) cond.head_speed = in.head_speed.repeat({halves, 1});
  cond.do_classifier_free_guidance = cfg;
  cond.hallo_training_path = true;

  // DDIM (Hallo's) or DPM-Solver++ 2M, from the model's scheduler kwargs. Both start from plain randn
  // (init_noise_sigma 1) and take the model output unscaled (scale_model_input is the identity).
  auto sampler = sampling::make_sampler(in.sampler, scheduler_kwargs, in.steps);
  if (trace) trace->timesteps = sampler->timesteps();
  auto latents = in.initial_latents;                                                // [1, 4, F, h, w]
  int step = 0;
  for (int64_t t : sampler->timesteps()) {
    auto x = cfg ? torch::cat({latents, latents}, 0) : latents;                     // [halves, 4, F, h, w]
    auto tt = torch::full({}, t, torch::TensorOptions().dtype(torch::kLong).device(dev));
    torch::Tensor out;
    {
      StageClock::Scope sc(in.clock, "unet3d_step");
      out = nets.unet->forward(x, tt, cond);                                        // [halves, 4, F, h, w]
    }
    if (trace) trace->unet_out.push_back(out);
    {
      StageClock::Scope sc(in.clock, "guidance_step");
      torch::Tensor guided = out;
      if (cfg) {
        auto chunks = out.chunk(2, 0);
        guided = sampling::cfg_combine(chunks[0], chunks[1], in.guidance_scale);
      }
      latents = sampler->step(guided, t, latents);
    }
    if (trace) trace->latents.push_back(latents);
    ++step;
    if (on_step) on_step(step, static_cast<int>(in.steps));
  }
  nets.unet->set_reference_banks({});
  return latents;
}

}  // namespace emo::pipeline

namespace emo::pipeline {
torch::Tensor decode_video(Networks& nets, const torch::Tensor& latents, int64_t chunk) {
  auto frames = latents[0].permute({1, 0, 2, 3});                                   // [F, 4, h, w]
  auto imgs = nets.vae->decode_latents(frames, chunk);                              // [F, 3, H, W]
  return (imgs.to(torch::kFloat) / 2 + 0.5).clamp(0, 1).permute({1, 0, 2, 3}).unsqueeze(0);  // [1, 3, F, H, W]
}
}  // namespace emo::pipeline
