// The BPE model of tokenizer.json: vocab, ranked merges, byte fallback, unk,
// ignore_merges. Encodes one pre-tokenized word at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace tandem::hf {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Open-addressing map (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
  struct Entry {
    uint64_t key;  // (left << 32) | right; kEmpty when unused
    int32_t rank;
    int32_t id;
  };
  void build(const std::vector<Entry>& entries);
  const Entry* find(int32_t left, int32_t right) const {
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
                         static_cast<uint32_t>(right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  size_t slot(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  std::vector<Entry> table_;
  size_t mask_ = 0;
  int shift_ = 64;
};

class BpeModel {
 public:
  // `byte_level`: words arrive as raw bytes (ByteLevel pre-tokenizer) and the
  // vocabulary's byte-level characters are mapped back to bytes at load.
  static StatusOr<std::unique_ptr<BpeModel>> load(const nlohmann::json& model, bool byte_level);

  // Appends the ids of one word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  // The vocabulary string as written in tokenizer.json ("" for a hole).
  const std::string& token(int32_t id) const { return tokens_[id]; }
  // Looks up a token as written in tokenizer.json.
  std::optional<int32_t> id_of(std::string_view token) const;

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  std::vector<std::string> tokens_;  // id -> token as in the file
  StringIdMap vocab_;                // internal form (raw bytes when byte_level_) -> id
  StringIdMap file_vocab_;           // as in the file (only when byte_level_)
  int32_t byte_ids_[256];            // byte_level_: id of each single byte; byte_fallback_: <0xNN>
  MergeTable merges_;

  // Word -> ids cache shared by all callers (encode is const and thread-safe).
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>
      cache_;  // GUARDED_BY(cache_mu_)
};

}  // namespace tandem::hf
