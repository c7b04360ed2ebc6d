// RAII owners for libav* objects and error helpers shared by src/video/ (internal header).
#pragma once
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

namespace emo::video::detail {

struct InputFormatDeleter {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
// Output contexts: closes the AVIO handle (if the muxer needed a file) then frees the context.
struct OutputFormatDeleter {
  void operator()(AVFormatContext* c) const {
    if (!c) return;
    if (c->oformat && !(c->oformat->flags & AVFMT_NOFILE) && c->pb) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
struct FifoDeleter {
  void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); }
};
struct DictDeleter {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};

using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;
using FifoPtr = std::unique_ptr<AVAudioFifo, FifoDeleter>;

// av_err2str for C++ (the macro uses a C compound literal).
std::string av_error(int errnum);

FramePtr make_frame();    // throws std::bad_alloc
PacketPtr make_packet();  // throws std::bad_alloc

// Opens `path` for reading and finds its stream info. Throws InputError "<path>: <what>: <av error>".
InputFormatPtr open_input(const std::string& path);

// Seconds from a timestamp in `tb` (or `fallback` for AV_NOPTS_VALUE).
double ts_seconds(int64_t ts, AVRational tb, double fallback = -1.0);

// A stream's duration in seconds from the header: the stream's own duration (MP4: edit lists applied), else
// Matroska's per-track "DURATION" tag (the track's end time, written by the muxer, which knows the last
// packet's real length) minus the start time; -1 when neither is there.
double stream_duration(const AVStream* st);

const char* media_type_name(AVMediaType t);

// Silences libav's own stderr chatter below warnings once per process (it would bypass emo's logger).
void init_libav_logging();

}  // namespace emo::video::detail
