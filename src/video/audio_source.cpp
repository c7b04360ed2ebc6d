#include "video/audio_source.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

#include <filesystem>
#include <vector>

#include "emo/error.h"

namespace emo::video::detail {

AudioSource::AudioSource(const std::string& path, int stream_index) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(path + ": audio file not found");
  fmt_ = open_input(path);
  const AVCodec* codec = nullptr;
  if (stream_index >= 0) {
    if (stream_index >= static_cast<int>(fmt_->nb_streams) ||
        fmt_->streams[stream_index]->codecpar->codec_type != AVMEDIA_TYPE_AUDIO)
      throw InputError(path + ": stream " + std::to_string(stream_index) + " is not an audio stream");
    stream_ = stream_index;
    codec = avcodec_find_decoder(fmt_->streams[stream_]->codecpar->codec_id);
  } else {
    stream_ = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (stream_ < 0) throw InputError(path + ": no audio stream: " + av_error(stream_));
  }
  if (!codec) throw InputError(path + ": no decoder for the audio stream");
  for (unsigned i = 0; i < fmt_->nb_streams; ++i)
    if (static_cast<int>(i) != stream_) fmt_->streams[i]->discard = AVDISCARD_ALL;

  dec_.reset(avcodec_alloc_context3(codec));
  if (!dec_) throw std::bad_alloc();
  int rc = avcodec_parameters_to_context(dec_.get(), fmt_->streams[stream_]->codecpar);
  if (rc < 0) throw InputError(path + ": bad audio stream parameters: " + av_error(rc));
  dec_->pkt_timebase = fmt_->streams[stream_]->time_base;
  dec_->err_recognition |= AV_EF_CRCCHECK | AV_EF_EXPLODE;  // as emo::audio::decode_audio: damage is an error
  rc = avcodec_open2(dec_.get(), codec, nullptr);
  if (rc < 0) throw InputError(path + ": cannot open the audio decoder (" + codec->name + "): " + av_error(rc));
  if (dec_->sample_rate <= 0) throw InputError(path + ": audio stream has no sample rate");
  frame_ = make_frame();
  pkt_ = make_packet();
}

void AudioSource::set_output(AVSampleFormat fmt, int sample_rate, const AVChannelLayout& layout) {
  out_fmt_ = fmt;
  out_rate_ = sample_rate;
  out_channels_ = layout.nb_channels;
  AVChannelLayout in_layout;
  if (dec_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || dec_->ch_layout.nb_channels <= 0) {
    av_channel_layout_default(&in_layout, dec_->ch_layout.nb_channels > 0 ? dec_->ch_layout.nb_channels : 1);
  } else {
    av_channel_layout_copy(&in_layout, &dec_->ch_layout);
  }
  SwrContext* raw = nullptr;
  int rc = swr_alloc_set_opts2(&raw, const_cast<AVChannelLayout*>(&layout), fmt, sample_rate, &in_layout, dec_->sample_fmt, dec_->sample_rate, 0,
                               nullptr);
  av_channel_layout_uninit(&in_layout);
  swr_.reset(raw);
  if (rc < 0) throw InputError(path_ + ": cannot configure the audio resampler: " + av_error(rc));
  rc = swr_init(swr_.get());
  if (rc < 0) throw InputError(path_ + ": cannot initialise the audio resampler: " + av_error(rc));
}

void AudioSource::convert_and_push(AVAudioFifo* fifo, const AVFrame* in) {
  const int in_samples = in ? in->nb_samples : 0;
  const int out_max = swr_get_out_samples(swr_.get(), in_samples);
  if (out_max <= 0) return;
  uint8_t** planes = nullptr;
  int rc = av_samples_alloc_array_and_samples(&planes, nullptr, out_channels_, out_max, out_fmt_, 0);
  if (rc < 0) throw std::bad_alloc();
  struct Free {
    uint8_t*** p;
    ~Free() {
      if (*p) av_freep(&(*p)[0]);
      av_freep(p);
    }
  } guard{&planes};
  int got = swr_convert(swr_.get(), planes, out_max, in ? const_cast<const uint8_t**>(in->extended_data) : nullptr,
                        in_samples);
  if (got < 0) throw InputError(path_ + ": audio resampling failed: " + av_error(got));
  if (got == 0) return;
  rc = av_audio_fifo_write(fifo, reinterpret_cast<void**>(planes), got);
  if (rc < got) throw std::bad_alloc();
}

bool AudioSource::send_next_packet() {
  while (!demux_done_) {
    int rc = av_read_frame(fmt_.get(), pkt_.get());
    if (rc == AVERROR_EOF) {
      demux_done_ = true;
      break;
    }
    if (rc < 0) throw InputError(path_ + ": cannot read audio: " + av_error(rc));
    if (pkt_->stream_index != stream_) {
      av_packet_unref(pkt_.get());
      continue;
    }
    rc = avcodec_send_packet(dec_.get(), pkt_.get());
    av_packet_unref(pkt_.get());
    if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_INVALIDDATA)
      throw InputError(path_ + ": audio decoding failed: " + av_error(rc));
    return true;
  }
  avcodec_send_packet(dec_.get(), nullptr);  // enter draining mode
  return false;
}

bool AudioSource::fill(AVAudioFifo* fifo, int samples) {
  if (!swr_) throw std::logic_error("AudioSource::fill before set_output");
  while (av_audio_fifo_size(fifo) < samples) {
    if (decoder_done_) return false;
    int rc = avcodec_receive_frame(dec_.get(), frame_.get());
    if (rc == AVERROR(EAGAIN)) {
      send_next_packet();  // at the end of input this enters draining mode: buffered frames, then EOF
      continue;
    }
    if (rc == AVERROR_EOF) {
      convert_and_push(fifo, nullptr);  // samples still inside the resampler
      decoder_done_ = true;
      continue;
    }
    if (rc < 0) throw InputError(path_ + ": audio decoding failed: " + av_error(rc));
    convert_and_push(fifo, frame_.get());
    av_frame_unref(frame_.get());
  }
  return true;
}

}  // namespace emo::video::detail
