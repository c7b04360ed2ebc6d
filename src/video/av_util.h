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

#include "util/av_util.h"
#include <string>

namespace emo::video::detail {

// The RAII owners are shared with src/audio (src/util/av_util.h).
using av::CodecContextPtr;
using av::FifoPtr;
using av::FramePtr;
using av::InputFormatPtr;
using av::OutputFormatPtr;
using av::PacketPtr;
using av::SwrPtr;
using av::SwsPtr;

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
