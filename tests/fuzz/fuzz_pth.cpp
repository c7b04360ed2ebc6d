// libFuzzer target: torch.save checkpoints as load_state_dict reads them: format sniffing, the zip directory
// reader (stored entries, ZIP64), the legacy stream of pickles, the safe pickle VM and storage resolution,
// through the in-memory entry point load_torch_checkpoint(MappedFile::from_bytes(...)).
#include <ATen/core/Tensor.h>

#include "emo/mapped_file.h"
#include "emo/state_dict.h"
#include "fuzz_common.h"
#include "io/zip_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = emo::io::MappedFile::from_bytes("fuzz.pth", data, size);
  (void)emo::io::detect_format(data, size);
  try {  // the zip directory on its own: every entry's bytes must lie inside the file
    emo::io::ZipReader zip(file);
    for (const auto& [name, e] : zip.entries()) emo::fuzz::touch(zip.data(e), e.size);
  } catch (const emo::Error&) {
  }
  try {
    auto sd = emo::io::load_torch_checkpoint(file);
    for (const auto& [name, t] : sd) {
      if (!t.defined()) continue;
      // A tensor's view must stay inside its storage.
      at::Tensor c = t.contiguous();
      emo::fuzz::touch(c.data_ptr(), c.numel() * c.element_size());
    }
  } catch (const emo::Error&) {
  }
  return 0;
}
