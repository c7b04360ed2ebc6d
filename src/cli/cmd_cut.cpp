// emo cut --input V --out CLIP.mp4 [--start S --end E] [--crop X,W,Y,H --ref-height RH] [--size 512]
//         [--first-frame F.png] [--audio-out A.wav]: prepares an evaluation clip as the HDTF protocol does (time
// range, fixed crop window, 512 x 512, 25 fps, 16 kHz mono audio) through libav, no ffmpeg CLI
// (eval::cut_clip; scripts/hdtf/prepare.sh, docs/hdtf.md).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "emo/error.h"
#include "emo/eval.h"

namespace emo::cli {

namespace {
// "mm:ss", "hh:mm:ss" or plain seconds (fractions allowed) -> seconds.
double parse_time(const std::string& s) {
  double t = 0;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t colon = s.find(':', pos);
    const std::string part = s.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || v < 0) throw UsageError("emo cut: bad time '" + s + "'");
    t = t * 60 + v;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return t;
}
}  // namespace

Run add_cut(CLI::App& app, GlobalOptions&) {
  auto o = std::make_shared<eval::CutClipOptions>();
  auto start = std::make_shared<std::string>("0"), end = std::make_shared<std::string>();
  auto crop = std::make_shared<std::vector<int>>();
  auto* sub = app.add_subcommand("cut", "Cut, crop and resize an evaluation clip (HDTF protocol: 512x512, 25 fps, 16 kHz mono)");
  sub->add_option("-i,--input", o->input, "Source video (with its audio track)")->required();
  sub->add_option("-o,--out", o->output, "Output clip (.mp4 or .mkv)")->required();
  sub->add_option("--start", *start, "Start time (seconds, mm:ss or hh:mm:ss)")->capture_default_str();
  sub->add_option("--end", *end, "End time (default: end of the source)");
  sub->add_option("--crop", *crop, "Crop window X,W,Y,H (HDTF crop_wh: min_width width min_height height)")
      ->delimiter(',')
      ->expected(4);
  sub->add_option("--ref-height", o->ref_height, "Frame height the crop window refers to (HDTF xx_resolution.txt; 0 = source)");
  sub->add_option("--size", o->size, "Output side (square, even; 0 = keep the crop size)")->capture_default_str();
  sub->add_option("--fps", o->fps, "Output frame rate")->capture_default_str();
  sub->add_option("--crf", o->crf, "H.264 quality")->capture_default_str()->check(CLI::Range(0, 51));
  sub->add_option("--first-frame", o->first_frame_png, "Also write the first output frame (PNG): the portrait for emo generate");
  sub->add_option("--audio-out", o->audio_wav, "Also write the clip's audio (16 kHz mono WAV): the driving audio");
  return [o, start, end, crop] {
    o->start_s = parse_time(*start);
    o->end_s = end->empty() ? 0 : parse_time(*end);
    if (!end->empty() && o->end_s <= o->start_s) throw UsageError("emo cut: --end must be after --start");
    if (!crop->empty()) {
      o->crop_x = (*crop)[0], o->crop_w = (*crop)[1], o->crop_y = (*crop)[2], o->crop_h = (*crop)[3];
      if (o->crop_w <= 0 || o->crop_h <= 0) throw UsageError("emo cut: --crop width and height must be > 0");
    }
    auto r = eval::cut_clip(*o);
    std::printf("%s: %lld frames %dx%d from window x=%d y=%d w=%d h=%d%s\n", o->output.c_str(),
                static_cast<long long>(r.frames), r.width, r.height, r.crop_x, r.crop_y, r.crop_w, r.crop_h,
                r.has_audio ? ", with audio" : ", no audio");
    return 0;
  };
}

}  // namespace emo::cli
