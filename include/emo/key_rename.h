// All checkpoint key renaming lives here, as tables (src/io/key_rename.cpp).
#pragma once
#include "emo/state_dict.h"

namespace emo::io {

enum class KeyScheme {
  // diffusers VAE mid-block attention: legacy query/key/value/proj_attn -> to_q/to_k/to_v/to_out.0
  kVaeLegacyAttention,
  // transformers wav2vec2 positional conv weight norm: parametrizations.weight.original0/1 -> weight_g/weight_v,
  // and the "wav2vec2." prefix of Wav2Vec2ForCTC files dropped.
  kWav2Vec2,
};

// Returns `sd` with every key rewritten by the scheme's table; keys the table does not touch pass through.
// Throws ModelError if two keys would collide after renaming.
StateDict rename_keys(const StateDict& sd, KeyScheme scheme);

// Applies the table to a single key (exposed for tests and for `emo inspect`).
std::string rename_key(const std::string& key, KeyScheme scheme);

}  // namespace emo::io
