// Checkpoint key renaming tables. Sources: diffusers modeling_utils._fix_state_dict_keys_on_load /
// _convert_deprecated_attention_blocks (VAE), transformers Wav2Vec2 weight-norm parametrizations.
#include "emo/key_rename.h"

#include "emo/error.h"

namespace emo::io {

namespace {

enum class Where { kSuffix, kInfix, kPrefix };

struct Rule {
  KeyScheme scheme;
  Where where;
  const char* from;
  const char* to;
};

// Order matters only within one scheme: the first rule that matches a key applies, then the rest are tried on the result.
const Rule kRules[] = {
    {KeyScheme::kVaeLegacyAttention, Where::kInfix, ".attentions.0.query.", ".attentions.0.to_q."},
    {KeyScheme::kVaeLegacyAttention, Where::kInfix, ".attentions.0.key.", ".attentions.0.to_k."},
    {KeyScheme::kVaeLegacyAttention, Where::kInfix, ".attentions.0.value.", ".attentions.0.to_v."},
    {KeyScheme::kVaeLegacyAttention, Where::kInfix, ".attentions.0.proj_attn.", ".attentions.0.to_out.0."},
    {KeyScheme::kWav2Vec2, Where::kPrefix, "wav2vec2.", ""},
    {KeyScheme::kWav2Vec2, Where::kSuffix, ".parametrizations.weight.original0", ".weight_g"},
    {KeyScheme::kWav2Vec2, Where::kSuffix, ".parametrizations.weight.original1", ".weight_v"},
};

bool apply(const Rule& r, std::string& key) {
  const std::string from = r.from;
  switch (r.where) {
    case Where::kPrefix:
      if (key.compare(0, from.size(), from) == 0) { key = r.to + key.substr(from.size()); return true; }
      return false;
    case Where::kSuffix:
      if (key.size() >= from.size() && key.compare(key.size() - from.size(), from.size(), from) == 0) {
        key = key.substr(0, key.size() - from.size()) + r.to;
        return true;
      }
      return false;
    case Where::kInfix: {
      auto p = key.find(from);
      if (p == std::string::npos) return false;
      key = key.substr(0, p) + r.to + key.substr(p + from.size());
      return true;
    }
  }
  return false;
}

}  // namespace

std::string rename_key(const std::string& key, KeyScheme scheme) {
  std::string k = key;
  for (const auto& r : kRules)
    if (r.scheme == scheme) apply(r, k);
  return k;
}

StateDict rename_keys(const StateDict& sd, KeyScheme scheme) {
  StateDict out;
  for (const auto& [k, v] : sd) {
    std::string nk = rename_key(k, scheme);
    if (!out.emplace(nk, v).second) throw ModelError("weights hold both '" + k + "' and its renamed form '" + nk + "'");
  }
  return out;
}

}  // namespace emo::io
