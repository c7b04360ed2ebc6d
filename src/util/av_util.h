// Small RAII helpers around FFmpeg's libav* handles (libavformat/libavcodec/libswresample 5.x/6.x).
// Shared by src/audio (decoding) and src/video (encoding/muxing): every handle lives in a unique_ptr
// whose deleter calls the matching libav free function, so no error path leaks.
#pragma once
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

namespace emo::av {

struct InputFormatDeleter {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
// Output contexts: closes the AVIOContext if the muxer owns a file, then frees the context.
struct OutputFormatDeleter {
  void operator()(AVFormatContext* p) const {
    if (p && p->oformat && !(p->oformat->flags & AVFMT_NOFILE) && p->pb) avio_closep(&p->pb);
    avformat_free_context(p);
  }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwrDeleter {
  void operator()(SwrContext* p) const { swr_free(&p); }
};

struct SwsDeleter {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};
struct FifoDeleter {
  void operator()(AVAudioFifo* p) const { av_audio_fifo_free(p); }
};
struct DictDeleter {
  void operator()(AVDictionary* p) const { av_dict_free(&p); }
};

using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using FifoPtr = std::unique_ptr<AVAudioFifo, FifoDeleter>;

// av_strerror as a std::string ("Invalid data found when processing input").
inline std::string error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

inline FramePtr make_frame() { return FramePtr(av_frame_alloc()); }
inline PacketPtr make_packet() { return PacketPtr(av_packet_alloc()); }

// Silences libav's own stderr logging below `level` (AV_LOG_ERROR by default); idempotent.
inline void quiet_logs(int level = AV_LOG_ERROR) { av_log_set_level(level); }

}  // namespace emo::av
