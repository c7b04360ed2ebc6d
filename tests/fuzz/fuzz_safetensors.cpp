// libFuzzer target: the safetensors reader (header length, JSON header, dtypes, shapes, offsets) and the tensor
// views it hands out, through the in-memory entry point SafetensorsFile::open(MappedFile::from_bytes(...)).
#include <ATen/core/Tensor.h>

#include "emo/mapped_file.h"
#include "emo/state_dict.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto st = emo::io::SafetensorsFile::open(emo::io::MappedFile::from_bytes("fuzz.safetensors", data, size));
    for (const auto& e : st.entries()) {
      at::Tensor t = st.tensor(e.name);
      if (static_cast<uint64_t>(t.numel()) * t.element_size() != e.end - e.begin) __builtin_trap();
      emo::fuzz::touch(t.data_ptr(), t.numel() * t.element_size());
    }
    (void)st.metadata();
  } catch (const emo::Error&) {
  }
  return 0;
}
