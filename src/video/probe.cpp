// probe(): streams, codecs, frame counts, durations and tags of a media file (libavformat, no decoding).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "emo/error.h"
#include "emo/video.h"
#include "video/av_util.h"

namespace emo::video {

using namespace detail;

namespace {

std::map<std::string, std::string> tags(const AVDictionary* d) {
  std::map<std::string, std::string> out;
  const AVDictionaryEntry* e = nullptr;
  while ((e = av_dict_get(d, "", e, AV_DICT_IGNORE_SUFFIX))) {
    std::string key = e->key;  // Matroska upper-cases tag names; MP4 keeps them as written
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    out[key] = e->value;
  }
  return out;
}

}  // namespace

const StreamInfo* ProbeResult::first(const std::string& type) const {
  for (const auto& s : streams)
    if (s.type == type) return &s;
  return nullptr;
}

size_t ProbeResult::count(const std::string& type) const {
  return static_cast<size_t>(std::count_if(streams.begin(), streams.end(), [&](const StreamInfo& s) { return s.type == type; }));
}

ProbeResult probe(const std::string& path, bool count_packets) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(path + ": file not found");
  InputFormatPtr fmt = open_input(path);

  ProbeResult r;
  r.path = path;
  r.format = fmt->iformat ? fmt->iformat->name : "";
  if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) r.duration = fmt->duration / static_cast<double>(AV_TIME_BASE);
  r.metadata = tags(fmt->metadata);

  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* st = fmt->streams[i];
    const AVCodecParameters* par = st->codecpar;
    StreamInfo s;
    s.index = static_cast<int>(i);
    s.type = media_type_name(par->codec_type);
    s.codec = avcodec_get_name(par->codec_id);
    s.frames = st->nb_frames > 0 ? st->nb_frames : -1;
    s.duration = stream_duration(st);
    s.start_time = ts_seconds(st->start_time, st->time_base, 0.0);
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
      s.width = par->width;
      s.height = par->height;
      AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
      s.fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0.0;
      const char* pf = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
      s.pix_fmt = pf ? pf : "";
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
      s.sample_rate = par->sample_rate;
      s.channels = par->ch_layout.nb_channels;
      s.frame_size = par->frame_size;
    }
    s.metadata = tags(st->metadata);
    r.streams.push_back(std::move(s));
  }

  if (count_packets) {
    const size_t n = r.streams.size();
    std::vector<int64_t> packets(n, 0), lo(n, std::numeric_limits<int64_t>::max()), hi(n, std::numeric_limits<int64_t>::min());
    PacketPtr pkt = make_packet();
    for (;;) {
      int rc = av_read_frame(fmt.get(), pkt.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) throw InputError(path + ": cannot read packets: " + av_error(rc));
      const size_t k = static_cast<size_t>(pkt->stream_index);
      if (k < n) {
        ++packets[k];
        if (pkt->pts != AV_NOPTS_VALUE) {
          lo[k] = std::min(lo[k], pkt->pts);
          hi[k] = std::max(hi[k], pkt->pts + std::max<int64_t>(pkt->duration, 0));
        }
      }
      av_packet_unref(pkt.get());
    }
    for (size_t k = 0; k < n; ++k) {
      r.streams[k].frames = packets[k];
      // Only fill a duration the header did not give (see stream_duration()): from packet timestamps.
      StreamInfo& s = r.streams[k];
      if (s.duration < 0 && packets[k] > 0 && hi[k] > lo[k])
        s.duration = ts_seconds(hi[k] - lo[k], fmt->streams[k]->time_base);
    }
  }
  return r;
}

}  // namespace emo::video
