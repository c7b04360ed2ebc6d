// emo-test: needs-libav
#include "support/audio_encode.h"

#include <cstdint>

#include "util/av_util.h"

namespace emo::test {

bool encode_audio(const std::string& path, const char* encoder, const std::vector<float>& pcm, int rate,
                       int channels) {
  const AVCodec* codec = avcodec_find_encoder_by_name(encoder);
  if (!codec) return false;
  AVFormatContext* raw = nullptr;
  if (avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()) < 0) return false;
  emo::av::OutputFormatPtr fmt(raw);
  emo::av::CodecContextPtr ctx(avcodec_alloc_context3(codec));
  ctx->sample_rate = rate;
  av_channel_layout_default(&ctx->ch_layout, channels);
  ctx->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
  ctx->bit_rate = 128000;
  ctx->time_base = AVRational{1, rate};
  if (fmt->oformat->flags & AVFMT_GLOBALHEADER) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (avcodec_open2(ctx.get(), codec, nullptr) < 0) return false;
  AVStream* st = avformat_new_stream(fmt.get(), nullptr);
  avcodec_parameters_from_context(st->codecpar, ctx.get());
  st->time_base = ctx->time_base;
  if (avio_open(&fmt->pb, path.c_str(), AVIO_FLAG_WRITE) < 0) return false;
  if (avformat_write_header(fmt.get(), nullptr) < 0) return false;

  auto pkt = emo::av::make_packet();
  auto drain = [&] {
    while (avcodec_receive_packet(ctx.get(), pkt.get()) == 0) {
      av_packet_rescale_ts(pkt.get(), ctx->time_base, st->time_base);
      pkt->stream_index = st->index;
      av_interleaved_write_frame(fmt.get(), pkt.get());
    }
  };
  const int frame_size = ctx->frame_size > 0 ? ctx->frame_size : 1024;
  const int64_t total = static_cast<int64_t>(pcm.size()) / channels;
  for (int64_t pos = 0; pos < total; pos += frame_size) {
    auto frame = emo::av::make_frame();
    frame->nb_samples = static_cast<int>(std::min<int64_t>(frame_size, total - pos));
    frame->format = ctx->sample_fmt;
    frame->sample_rate = rate;
    av_channel_layout_copy(&frame->ch_layout, &ctx->ch_layout);
    if (av_frame_get_buffer(frame.get(), 0) < 0) return false;
    for (int i = 0; i < frame->nb_samples; ++i)
      for (int c = 0; c < channels; ++c) {
        const float v = pcm[(pos + i) * channels + c];
        switch (ctx->sample_fmt) {
          case AV_SAMPLE_FMT_FLTP: reinterpret_cast<float*>(frame->extended_data[c])[i] = v; break;
          case AV_SAMPLE_FMT_FLT: reinterpret_cast<float*>(frame->extended_data[0])[i * channels + c] = v; break;
          case AV_SAMPLE_FMT_S16P: reinterpret_cast<int16_t*>(frame->extended_data[c])[i] = int16_t(v * 32767); break;
          case AV_SAMPLE_FMT_S16: reinterpret_cast<int16_t*>(frame->extended_data[0])[i * channels + c] = int16_t(v * 32767); break;
          case AV_SAMPLE_FMT_S32P: reinterpret_cast<int32_t*>(frame->extended_data[c])[i] = int32_t(v * 2147483000.0); break;
          case AV_SAMPLE_FMT_S32: reinterpret_cast<int32_t*>(frame->extended_data[0])[i * channels + c] = int32_t(v * 2147483000.0); break;
          default: return false;
        }
      }
    frame->pts = pos;
    if (avcodec_send_frame(ctx.get(), frame.get()) < 0) return false;
    drain();
  }
  avcodec_send_frame(ctx.get(), nullptr);
  drain();
  return av_write_trailer(fmt.get()) >= 0;
}

}  // namespace emo::test
