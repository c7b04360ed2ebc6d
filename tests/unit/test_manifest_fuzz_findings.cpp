// Findings of fuzz_manifest_jsonl (tests/fuzz/, docs/reliability.md), kept as regressions.
#include <gtest/gtest.h>

#include "emo/batch.h"
#include "emo/error.h"

// A number too large for a double (1e400) made nlohmann throw out_of_range.406 from parse_json_line, which only
// caught parse_error: the exception escaped as exit 1 "internal error". It is a malformed line now (exit 3, with
// every other bad line listed).
TEST(ManifestFuzzFindings, NumberOverflowIsAMalformedLine) {
  const std::string text =
      "{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\", \"steps\": 1e400}\n"
      "{\"image\": \"b.png\", \"audio\": \"b.wav\", \"output\": \"b.mp4\"}\n";
  try {
    emo::batch::parse_manifest_text(text, "jobs.jsonl", "/tmp", emo::GenerateParams{},
                                    emo::batch::ManifestFormat::kJsonLines);
    ADD_FAILURE() << "accepted";
  } catch (const emo::InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("line 1"), std::string::npos) << m;
    EXPECT_NE(m.find("number overflow"), std::string::npos) << m;
    EXPECT_EQ(m.find("json.exception"), std::string::npos) << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "escaped as " << e.what();
  }
}
