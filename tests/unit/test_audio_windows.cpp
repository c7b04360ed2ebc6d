// audio::audio_windows over a frame range: what the clip loop builds per clip instead of the whole file's windows.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/audio.h"
#include "emo/error.h"

TEST(AudioWindows, PerClipRangeEqualsTheSliceOfTheWholeFilesWindows) {
  torch::manual_seed(5);
  auto emb = torch::randn({12, 3, 4});                                 // [T, L, H]
  auto whole = emo::audio::audio_windows(emb, 2);                      // [T, 5, L, H]
  for (int64_t b = 0; b < 12; b += 4) {                                // clips of 4 frames, edges clamp to [0, T-1]
    auto part = emo::audio::audio_windows(emb, 2, b, b + 4);
    EXPECT_TRUE(torch::equal(part, whole.slice(0, b, b + 4))) << "clip starting at " << b;
  }
  EXPECT_EQ(emo::audio::audio_windows(emb, 2, 5, 5).size(0), 0);
}

TEST(AudioWindows, RangeOutsideTheFeaturesIsRefused) {
  auto emb = torch::zeros({8, 2, 2});
  EXPECT_THROW(emo::audio::audio_windows(emb, 2, -1, 4), emo::InputError);
  EXPECT_THROW(emo::audio::audio_windows(emb, 2, 4, 9), emo::InputError);
  EXPECT_THROW(emo::audio::audio_windows(emb, 2, 5, 4), emo::InputError);
}
