// VideoReader: the best video stream of any container -> RGB uint8 frames (cv::Mat), decoded with libav*.
// YUV -> RGB uses the stream's tagged matrix and range (BT.601 when untagged, as FFmpeg does).
#include <opencv2/core/mat.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "emo/error.h"
#include "emo/video.h"
#include "video/av_util.h"

namespace emo::video {

using namespace detail;

struct VideoReader::Impl {
  std::string path;
  InputFormatPtr fmt;
  CodecContextPtr dec;
  SwsPtr sws;
  FramePtr frame;
  PacketPtr pkt;
  int vstream = -1;
  int astream = -1;
  int sws_w = 0, sws_h = 0, sws_fmt = -1, sws_cs = -1, sws_range = -1;
  bool demux_done = false, decoder_done = false;
  int64_t frames_read = 0;
  double last_ts = 0;

  void open() {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw InputError(path + ": video file not found");
    fmt = open_input(path);
    const AVCodec* codec = nullptr;
    vstream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (vstream < 0) throw InputError(path + ": no video stream: " + av_error(vstream));
    if (!codec) throw InputError(path + ": no decoder for the video stream");
    int a = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, vstream, nullptr, 0);
    astream = a >= 0 ? a : -1;
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
      if (static_cast<int>(i) != vstream) fmt->streams[i]->discard = AVDISCARD_ALL;

    dec.reset(avcodec_alloc_context3(codec));
    if (!dec) throw std::bad_alloc();
    AVStream* st = fmt->streams[vstream];
    int rc = avcodec_parameters_to_context(dec.get(), st->codecpar);
    if (rc < 0) throw InputError(path + ": bad video stream parameters: " + av_error(rc));
    dec->pkt_timebase = st->time_base;
    dec->thread_count = 0;
    rc = avcodec_open2(dec.get(), codec, nullptr);
    if (rc < 0) throw InputError(path + ": cannot open the video decoder (" + codec->name + "): " + av_error(rc));
    frame = make_frame();
    pkt = make_packet();
  }

  void feed() {
    while (!demux_done) {
      int rc = av_read_frame(fmt.get(), pkt.get());
      if (rc == AVERROR_EOF) {
        demux_done = true;
        break;
      }
      if (rc < 0) throw InputError(path + ": cannot read: " + av_error(rc));
      if (pkt->stream_index != vstream) {
        av_packet_unref(pkt.get());
        continue;
      }
      rc = avcodec_send_packet(dec.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (rc < 0 && rc != AVERROR(EAGAIN)) throw InputError(path + ": video decoding failed: " + av_error(rc));
      return;
    }
    avcodec_send_packet(dec.get(), nullptr);  // draining: buffered frames, then EOF
  }

  void convert(cv::Mat& out) {
    const AVFrame* f = frame.get();
    const bool full = f->color_range == AVCOL_RANGE_JPEG || f->format == AV_PIX_FMT_YUVJ420P ||
                      f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P;
    if (!sws || f->width != sws_w || f->height != sws_h || f->format != sws_fmt || f->colorspace != sws_cs ||
        static_cast<int>(full) != sws_range) {
      sws.reset(sws_getContext(f->width, f->height, static_cast<AVPixelFormat>(f->format), f->width, f->height,
                               AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr,
                               nullptr));
      if (!sws) throw InputError(path + ": cannot convert pixel format " + std::to_string(f->format) + " to RGB");
      const int* coeffs = sws_getCoefficients(f->colorspace);  // unknown values give BT.601
      sws_setColorspaceDetails(sws.get(), coeffs, full ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16,
                               1 << 16);
      sws_w = f->width;
      sws_h = f->height;
      sws_fmt = f->format;
      sws_cs = f->colorspace;
      sws_range = full;
    }
    out.create(f->height, f->width, CV_8UC3);
    uint8_t* dst[1] = {out.ptr<uint8_t>(0)};
    const int dst_stride[1] = {static_cast<int>(out.step[0])};
    sws_scale(sws.get(), f->data, f->linesize, 0, f->height, dst, dst_stride);
  }

  bool read(cv::Mat& out) {
    while (!decoder_done) {
      int rc = avcodec_receive_frame(dec.get(), frame.get());
      if (rc == AVERROR(EAGAIN)) {
        feed();
        continue;
      }
      if (rc == AVERROR_EOF) {
        decoder_done = true;
        break;
      }
      if (rc < 0) throw InputError(path + ": video decoding failed: " + av_error(rc));
      AVStream* st = fmt->streams[vstream];
      const double start = ts_seconds(st->start_time, st->time_base, 0.0);
      last_ts = ts_seconds(frame->best_effort_timestamp, st->time_base, start + frames_read / fps_value()) - start;
      cv::Mat m;
      convert(m);
      out = m;
      av_frame_unref(frame.get());
      ++frames_read;
      return true;
    }
    return false;
  }

  double fps_value() const {
    const AVStream* st = fmt->streams[vstream];
    AVRational r = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0;
  }

  double duration_value() const {
    const AVStream* st = fmt->streams[vstream];
    const double d = stream_duration(st);
    if (d > 0) return d;
    if (fmt->duration == AV_NOPTS_VALUE || fmt->duration <= 0) return -1;
    // Container duration, less the time before this stream starts.
    const double start = ts_seconds(st->start_time, st->time_base, 0.0);
    const double fmt_start =
        fmt->start_time == AV_NOPTS_VALUE ? 0.0 : fmt->start_time / static_cast<double>(AV_TIME_BASE);
    const double c = fmt->duration / static_cast<double>(AV_TIME_BASE) - std::max(0.0, start - fmt_start);
    return c > 0 ? c : -1;
  }
};

VideoReader::VideoReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open();
}

VideoReader::~VideoReader() = default;

bool VideoReader::read(cv::Mat& rgb) { return impl_->read(rgb); }

std::vector<cv::Mat> VideoReader::read_all() {
  std::vector<cv::Mat> frames;
  cv::Mat m;
  while (impl_->read(m)) frames.push_back(m);  // read() allocates a new Mat each time
  return frames;
}

const std::string& VideoReader::path() const { return impl_->path; }
int VideoReader::width() const { return impl_->fmt->streams[impl_->vstream]->codecpar->width; }
int VideoReader::height() const { return impl_->fmt->streams[impl_->vstream]->codecpar->height; }
double VideoReader::fps() const { return impl_->fps_value(); }

int64_t VideoReader::frame_count() const {
  const AVStream* st = impl_->fmt->streams[impl_->vstream];
  if (st->nb_frames > 0) return st->nb_frames;
  const double d = impl_->duration_value(), f = impl_->fps_value();
  return d > 0 && f > 0 ? static_cast<int64_t>(std::llround(d * f)) : -1;
}

double VideoReader::duration() const { return impl_->duration_value(); }
double VideoReader::timestamp() const { return impl_->last_ts; }
int64_t VideoReader::frames_read() const { return impl_->frames_read; }
int VideoReader::video_stream_index() const { return impl_->vstream; }
std::string VideoReader::video_codec() const { return avcodec_get_name(impl_->fmt->streams[impl_->vstream]->codecpar->codec_id); }
bool VideoReader::has_audio() const { return impl_->astream >= 0; }
int VideoReader::audio_stream_index() const { return impl_->astream; }

}  // namespace emo::video
