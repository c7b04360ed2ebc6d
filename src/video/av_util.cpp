#include "video/av_util.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <cstdio>
#include <mutex>
#include <new>

#include "emo/error.h"

namespace emo::video::detail {

std::string av_error(int errnum) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_make_error_string(buf, sizeof(buf), errnum);
  return buf;
}

FramePtr make_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) throw std::bad_alloc();
  return f;
}

PacketPtr make_packet() {
  PacketPtr p(av_packet_alloc());
  if (!p) throw std::bad_alloc();
  return p;
}

InputFormatPtr open_input(const std::string& path) {
  init_libav_logging();
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (rc < 0) throw InputError(path + ": cannot open: " + av_error(rc));
  InputFormatPtr ctx(raw);
  rc = avformat_find_stream_info(ctx.get(), nullptr);
  if (rc < 0) throw InputError(path + ": cannot read stream information: " + av_error(rc));
  return ctx;
}

double ts_seconds(int64_t ts, AVRational tb, double fallback) {
  if (ts == AV_NOPTS_VALUE) return fallback;
  return static_cast<double>(ts) * av_q2d(tb);
}

double stream_duration(const AVStream* st) {
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return ts_seconds(st->duration, st->time_base);
  const AVDictionaryEntry* e = av_dict_get(st->metadata, "DURATION", nullptr, 0);  // case-insensitive
  if (!e) return -1;
  int h = 0, m = 0;
  double s = 0;
  if (std::sscanf(e->value, "%d:%d:%lf", &h, &m, &s) != 3) return -1;
  const double end = h * 3600.0 + m * 60.0 + s;
  const double start = ts_seconds(st->start_time, st->time_base, 0.0);
  return end > start ? end - start : -1;
}

const char* media_type_name(AVMediaType t) {
  switch (t) {
    case AVMEDIA_TYPE_VIDEO: return "video";
    case AVMEDIA_TYPE_AUDIO: return "audio";
    case AVMEDIA_TYPE_SUBTITLE: return "subtitle";
    case AVMEDIA_TYPE_DATA: return "data";
    case AVMEDIA_TYPE_ATTACHMENT: return "attachment";
    default: return "unknown";
  }
}

void init_libav_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (av_log_get_level() > AV_LOG_WARNING) av_log_set_level(AV_LOG_ERROR);
  });
}

}  // namespace emo::video::detail
