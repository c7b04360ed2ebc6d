// VideoWriter: RGB frames -> H.264 yuv420p (BT.709) + the input audio re-encoded to AAC, MP4 or MKV,
// written under a temporary name and renamed into place by finish().
#include <opencv2/core/mat.hpp>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
}

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "emo/error.h"
#include "emo/log.h"
#include "emo/video.h"
#include "util/atomic_file.h"
#include "video/audio_source.h"
#include "video/av_util.h"

namespace emo::video {

using namespace detail;

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// AAC sample rate: the source's when the encoder supports it, else the closest supported rate above it
// (or the highest one).
int pick_sample_rate(const AVCodec* codec, int wanted) {
  if (!codec->supported_samplerates) return wanted;
  int best = 0;
  for (const int* r = codec->supported_samplerates; *r; ++r) {
    if (*r == wanted) return wanted;
    if (*r > wanted && (best == 0 || *r < best)) best = *r;
  }
  if (best) return best;
  for (const int* r = codec->supported_samplerates; *r; ++r) best = std::max(best, *r);
  return best;
}

}  // namespace

struct VideoWriter::Impl {
  std::string final_path, temp_path;
  int width = 0, height = 0;
  VideoWriterOptions opt;
  AVRational fps{25, 1};

  OutputFormatPtr oc;
  CodecContextPtr venc, aenc;
  AVStream* vst = nullptr;
  AVStream* ast = nullptr;
  SwsPtr sws;
  FramePtr vframe;
  PacketPtr pkt;
  FifoPtr fifo;
  std::unique_ptr<AudioSource> audio;
  bool audio_exhausted = false;
  std::string venc_name;

  int64_t frames = 0;
  int64_t audio_samples = 0;  // samples sent to the AAC encoder
  bool file_created = false;
  bool closed = false;     // trailer written, file closed, still under temp_path
  bool finished = false;   // renamed onto final_path
  bool failed = false;

  ~Impl() { abort(); }

  [[noreturn]] void fail(const std::string& what, int rc) {
    failed = true;
    throw OutputError(final_path + ": " + what + (rc < 0 ? ": " + av_error(rc) : std::string()));
  }

  void abort() noexcept {
    if (finished) return;
    venc.reset();
    aenc.reset();
    oc.reset();  // closes the file
    if (file_created) std::remove(temp_path.c_str());
    file_created = false;
  }

  void open() {
    init_libav_logging();
    if (width <= 0 || height <= 0)
      throw OutputError(final_path + ": invalid video size " + std::to_string(width) + "x" + std::to_string(height));
    if (width % 2 || height % 2)
      throw OutputError(final_path + ": H.264 yuv420p needs an even width and height, got " + std::to_string(width) +
                        "x" + std::to_string(height));
    if (!(opt.fps > 0) || opt.fps > 1000) throw OutputError(final_path + ": invalid fps " + std::to_string(opt.fps));
    fps = av_d2q(opt.fps, 1001000);

    std::string container = opt.container;
    if (container.empty()) {
      const std::string ext = lower_extension(final_path);
      container = ext == ".mkv" ? "matroska" : "mp4";
      if (ext != ".mkv" && ext != ".mp4" && ext != ".m4v")
        log_warn(final_path + ": unknown extension '" + ext + "', writing MP4");
    }
    if (container != "mp4" && container != "matroska")
      throw OutputError(final_path + ": unsupported container '" + container + "' (mp4 or matroska)");

    // Inputs first: a bad audio file must fail before anything is created.
    if (!opt.audio_path.empty()) audio = std::make_unique<AudioSource>(opt.audio_path, opt.audio_stream);

    temp_path = util::temp_path_for(final_path);
    AVFormatContext* raw = nullptr;
    int rc = avformat_alloc_output_context2(&raw, nullptr, container.c_str(), temp_path.c_str());
    if (rc < 0 || !raw) fail("cannot create the " + container + " muxer", rc);
    oc.reset(raw);

    open_video_encoder();
    if (audio) open_audio_encoder();

    rc = avio_open(&oc->pb, temp_path.c_str(), AVIO_FLAG_WRITE);
    if (rc < 0) fail("cannot create " + temp_path, rc);
    file_created = true;

    for (const auto& [k, v] : opt.metadata) av_dict_set(&oc->metadata, k.c_str(), v.c_str(), 0);
    AVDictionary* mux_opts = nullptr;
    if (container == "mp4") av_dict_set(&mux_opts, "movflags", "+faststart+use_metadata_tags", 0);
    rc = avformat_write_header(oc.get(), &mux_opts);
    av_dict_free(&mux_opts);
    if (rc < 0) fail("cannot write the container header", rc);

    pkt = make_packet();
  }

  bool try_video_encoder(const AVCodec* codec) {
    CodecContextPtr c(avcodec_alloc_context3(codec));
    if (!c) throw std::bad_alloc();
    c->width = width;
    c->height = height;
    c->time_base = av_inv_q(fps);
    c->framerate = fps;
    c->sample_aspect_ratio = AVRational{1, 1};
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    c->colorspace = AVCOL_SPC_BT709;
    c->color_range = AVCOL_RANGE_MPEG;
    c->thread_count = opt.threads;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary* o = nullptr;
    if (codec->id == AV_CODEC_ID_H264) {
      av_dict_set_int(&o, "crf", opt.crf, 0);
      if (!opt.preset.empty()) av_dict_set(&o, "preset", opt.preset.c_str(), 0);
    } else {  // mpeg4: constant quantiser roughly matching the CRF
      c->flags |= AV_CODEC_FLAG_QSCALE;
      c->global_quality = FF_QP2LAMBDA * std::clamp(opt.crf / 6, 2, 31);
    }
    int rc = avcodec_open2(c.get(), codec, &o);
    av_dict_free(&o);
    if (rc < 0) {
      log_debug(final_path + ": encoder " + codec->name + " unavailable: " + av_error(rc));
      return false;
    }
    venc = std::move(c);
    venc_name = codec->name;
    return true;
  }

  void open_video_encoder() {
    bool ok = false;
    if (!opt.video_encoder.empty()) {  // forced by name: no fallback
      const AVCodec* c = avcodec_find_encoder_by_name(opt.video_encoder.c_str());
      if (!c || c->type != AVMEDIA_TYPE_VIDEO)
        fail("no video encoder named '" + opt.video_encoder + "' in this FFmpeg build", 0);
      if (!try_video_encoder(c)) fail("cannot open the video encoder '" + opt.video_encoder + "'", 0);
      ok = true;
    }
    if (!ok)
      if (const AVCodec* x264 = avcodec_find_encoder_by_name("libx264")) ok = try_video_encoder(x264);
    // Any other H.264 encoder this FFmpeg has (openh264, nvenc, ...); those needing hardware frames fail to open.
    void* it = nullptr;
    while (!ok) {
      const AVCodec* c = av_codec_iterate(&it);
      if (!c) break;
      if (av_codec_is_encoder(c) && c->id == AV_CODEC_ID_H264 && std::string(c->name) != "libx264")
        ok = try_video_encoder(c);
    }
    if (!ok) {
      const AVCodec* mpeg4 = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
      if (mpeg4 && (ok = try_video_encoder(mpeg4)))
        log_warn(final_path + ": no H.264 encoder available, falling back to MPEG-4 Part 2");
    }
    if (!ok) fail("no usable video encoder (libx264, H.264 or mpeg4)", 0);

    vst = avformat_new_stream(oc.get(), nullptr);
    if (!vst) throw std::bad_alloc();
    int rc = avcodec_parameters_from_context(vst->codecpar, venc.get());
    if (rc < 0) fail("cannot set video stream parameters", rc);
    vst->time_base = venc->time_base;
    vst->avg_frame_rate = fps;
    vst->r_frame_rate = fps;

    vframe = make_frame();
    vframe->format = AV_PIX_FMT_YUV420P;
    vframe->width = width;
    vframe->height = height;
    vframe->color_primaries = AVCOL_PRI_BT709;
    vframe->color_trc = AVCOL_TRC_BT709;
    vframe->colorspace = AVCOL_SPC_BT709;
    vframe->color_range = AVCOL_RANGE_MPEG;
    rc = av_frame_get_buffer(vframe.get(), 0);
    if (rc < 0) throw std::bad_alloc();

    sws.reset(sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
    if (!sws) fail("cannot create the RGB -> YUV converter", 0);
    const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(sws.get(), bt709, /*srcRange full*/ 1, bt709, /*dstRange limited*/ 0, 0, 1 << 16,
                             1 << 16);
  }

  void open_audio_encoder() {
    const AVCodec* codec = avcodec_find_encoder_by_name("aac");
    if (!codec) fail("the native AAC encoder is not available in this FFmpeg build", 0);
    aenc.reset(avcodec_alloc_context3(codec));
    if (!aenc) throw std::bad_alloc();
    aenc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    aenc->sample_rate = pick_sample_rate(codec, audio->source_sample_rate());
    av_channel_layout_default(&aenc->ch_layout, std::clamp(audio->source_channels(), 1, 2));
    aenc->bit_rate = opt.audio_bitrate;
    aenc->time_base = AVRational{1, aenc->sample_rate};
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(aenc.get(), codec, nullptr);
    if (rc < 0) fail("cannot open the AAC encoder", rc);
    if (aenc->frame_size <= 0) aenc->frame_size = 1024;

    ast = avformat_new_stream(oc.get(), nullptr);
    if (!ast) throw std::bad_alloc();
    rc = avcodec_parameters_from_context(ast->codecpar, aenc.get());
    if (rc < 0) fail("cannot set audio stream parameters", rc);
    ast->time_base = aenc->time_base;

    audio->set_output(aenc->sample_fmt, aenc->sample_rate, aenc->ch_layout);
    fifo.reset(av_audio_fifo_alloc(aenc->sample_fmt, aenc->ch_layout.nb_channels, aenc->frame_size * 4));
    if (!fifo) throw std::bad_alloc();
  }

  // Sends one frame (nullptr: flush) and writes every packet the encoder returns.
  void encode(AVCodecContext* enc, AVStream* st, AVFrame* frame) {
    int rc = avcodec_send_frame(enc, frame);
    if (rc < 0) fail(std::string("encoding failed (") + enc->codec->name + ")", rc);
    for (;;) {
      rc = avcodec_receive_packet(enc, pkt.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) fail(std::string("encoding failed (") + enc->codec->name + ")", rc);
      av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      rc = av_interleaved_write_frame(oc.get(), pkt.get());  // takes the packet's reference
      if (rc < 0) fail("cannot write to " + temp_path, rc);
    }
  }

  // Audio samples that cover the first n video frames.
  int64_t samples_for_frames(int64_t n) const {
    return av_rescale_rnd(n, static_cast<int64_t>(aenc->sample_rate) * fps.den, fps.num, AV_ROUND_NEAR_INF);
  }

  // Ensures the fifo holds `n` samples, padding with silence once the source is exhausted.
  void ensure_fifo(int n) {
    if (av_audio_fifo_size(fifo.get()) >= n) return;
    if (!audio_exhausted) audio_exhausted = !audio->fill(fifo.get(), n);
    const int missing = n - av_audio_fifo_size(fifo.get());
    if (missing <= 0) return;
    uint8_t** planes = nullptr;
    const int ch = aenc->ch_layout.nb_channels;
    if (av_samples_alloc_array_and_samples(&planes, nullptr, ch, missing, aenc->sample_fmt, 0) < 0)
      throw std::bad_alloc();
    av_samples_set_silence(planes, 0, missing, ch, aenc->sample_fmt);
    int rc = av_audio_fifo_write(fifo.get(), reinterpret_cast<void**>(planes), missing);
    av_freep(&planes[0]);
    av_freep(&planes);
    if (rc < missing) throw std::bad_alloc();
  }

  void encode_audio_frame(int nb_samples, int frame_samples) {
    FramePtr f = make_frame();
    f->nb_samples = frame_samples;
    f->format = aenc->sample_fmt;
    f->sample_rate = aenc->sample_rate;
    av_channel_layout_copy(&f->ch_layout, &aenc->ch_layout);
    if (av_frame_get_buffer(f.get(), 0) < 0) throw std::bad_alloc();
    if (frame_samples > nb_samples)
      av_samples_set_silence(f->extended_data, nb_samples, frame_samples - nb_samples, f->ch_layout.nb_channels,
                             aenc->sample_fmt);
    if (av_audio_fifo_read(fifo.get(), reinterpret_cast<void**>(f->extended_data), nb_samples) < nb_samples)
      fail("audio buffer underrun", 0);
    f->pts = audio_samples;
    audio_samples += nb_samples;
    encode(aenc.get(), ast, f.get());
  }

  // Encodes audio up to the end of the video written so far; with `final`, exactly up to it.
  void pump_audio(bool final) {
    if (!aenc) return;
    const int64_t target = samples_for_frames(frames);
    const int fs = aenc->frame_size;
    while (audio_samples + fs <= target) {
      ensure_fifo(fs);
      encode_audio_frame(fs, fs);
    }
    if (final && audio_samples < target) {
      const int rest = static_cast<int>(target - audio_samples);
      ensure_fifo(rest);
      const bool small_ok = aenc->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME;
      encode_audio_frame(rest, small_ok ? rest : fs);
    }
  }

  void check_writable() {
    if (finished || closed) throw OutputError(final_path + ": write after finish()");
    if (failed) throw OutputError(final_path + ": write after an earlier error");
  }

  void write_rgb(const uint8_t* data, int w, int h, std::ptrdiff_t stride) {
    check_writable();
    if (!data) throw OutputError(final_path + ": null frame");
    if (w != width || h != height)
      throw OutputError(final_path + ": frame " + std::to_string(frames) + " is " + std::to_string(w) + "x" +
                        std::to_string(h) + ", the video is " + std::to_string(width) + "x" + std::to_string(height));
    if (stride == 0) stride = static_cast<std::ptrdiff_t>(w) * 3;
    if (stride < static_cast<std::ptrdiff_t>(w) * 3) throw OutputError(final_path + ": row stride too small");
    int rc = av_frame_make_writable(vframe.get());
    if (rc < 0) fail("cannot get a frame buffer", rc);
    const uint8_t* src[1] = {data};
    const int src_stride[1] = {static_cast<int>(stride)};
    sws_scale(sws.get(), src, src_stride, 0, height, vframe->data, vframe->linesize);
    vframe->pts = frames;
    encode(venc.get(), vst, vframe.get());
    ++frames;
    pump_audio(false);
  }

  void close() {
    check_writable();
    if (frames == 0) fail("no frames were written", 0);
    pump_audio(true);
    if (aenc) encode(aenc.get(), ast, nullptr);
    encode(venc.get(), vst, nullptr);
    int rc = av_write_trailer(oc.get());
    if (rc < 0) fail("cannot finish the container", rc);
    rc = avio_closep(&oc->pb);
    if (rc < 0) fail("cannot close " + temp_path, rc);
    closed = true;
    oc.reset();
    venc.reset();
    aenc.reset();
  }

  void commit() {
    if (finished) return;
    if (!closed) throw OutputError(final_path + ": commit() before close()");
    try {
      util::commit_rename(temp_path, final_path);
    } catch (...) {
      failed = true;
      throw;
    }
    finished = true;
    file_created = false;
  }
};

VideoWriter::VideoWriter(const std::string& path, int width, int height, VideoWriterOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->final_path = path;
  impl_->width = width;
  impl_->height = height;
  impl_->opt = std::move(options);
  impl_->open();  // on throw, impl_'s destructor removes anything created
}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write(const cv::Mat& rgb) {
  if (rgb.empty() || rgb.type() != CV_8UC3 || rgb.dims != 2)
    throw OutputError(impl_->final_path + ": frames must be non-empty CV_8UC3 (RGB) images");
  impl_->write_rgb(rgb.ptr<uint8_t>(0), rgb.cols, rgb.rows, static_cast<std::ptrdiff_t>(rgb.step[0]));
}

void VideoWriter::write(const uint8_t* rgb, int width, int height, std::ptrdiff_t stride_bytes) {
  impl_->write_rgb(rgb, width, height, stride_bytes);
}

void VideoWriter::finish() {
  impl_->close();
  impl_->commit();
}
void VideoWriter::close() { impl_->close(); }
void VideoWriter::commit() { impl_->commit(); }
int64_t VideoWriter::frames_written() const { return impl_->frames; }
int VideoWriter::width() const { return impl_->width; }
int VideoWriter::height() const { return impl_->height; }
const std::string& VideoWriter::path() const { return impl_->final_path; }
const std::string& VideoWriter::temp_path() const { return impl_->temp_path; }
const std::string& VideoWriter::video_encoder() const { return impl_->venc_name; }
bool VideoWriter::has_audio() const { return !impl_->opt.audio_path.empty(); }

}  // namespace emo::video
