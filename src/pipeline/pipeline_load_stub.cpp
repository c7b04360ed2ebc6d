// TEMPORARY (branch batch): a weak stand-in for emo::Pipeline::load so that `emo batch` links before the real
// rendering pipeline lands. DELETE THIS FILE when the real Pipeline::load is merged (the strong definition
// wins when both are linked, but a static archive may pick whichever member it finds first).
#include "emo/generate.h"

namespace emo {

__attribute__((weak)) std::unique_ptr<Pipeline> Pipeline::load(const ModelSpec&, const RuntimeOptions&) {
  throw NotImplementedError(
      "the rendering pipeline is not built into this emo (src/pipeline/pipeline_load_stub.cpp is a placeholder)");
}

}  // namespace emo
