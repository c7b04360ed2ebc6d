// libFuzzer target: JSON Lines batch manifests (parse_manifest_text with the format forced), including per-line
// overrides, range validation and duplicate-output detection.
#include "emo/batch.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)emo::batch::parse_manifest_text(emo::fuzz::as_text(data, size), "fuzz.jsonl", "/nonexistent-fuzz-base",
                                             emo::GenerateParams{}, emo::batch::ManifestFormat::kJsonLines);
  } catch (const emo::Error&) {
  }
  return 0;
}
