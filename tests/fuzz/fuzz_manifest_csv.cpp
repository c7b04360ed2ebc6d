// libFuzzer target: CSV batch manifests (header row, quoting, per-column overrides given as text).
#include "emo/batch.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)emo::batch::parse_manifest_text(emo::fuzz::as_text(data, size), "fuzz.csv", "/nonexistent-fuzz-base",
                                          emo::GenerateParams{}, emo::batch::ManifestFormat::kCsv);
  } catch (const emo::Error&) {
  }
  return 0;
}
