#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <queue>

#include <nlohmann/json.hpp>

#include "tokenizer/hf_components.h"
#include "tokenizer/unicode.h"

namespace tandem::hf {
namespace {

using json = nlohmann::json;

constexpr size_t kCacheMaxWordBytes = 64;
constexpr size_t kCacheMaxEntries = 1 << 17;
// Words up to this many symbols use a simple rescan instead of a heap.
constexpr size_t kSmallWord = 24;

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  bool live;
};

}  // namespace

void MergeTable::build(const std::vector<Entry>& entries) {
  size_t cap = 16;
  while (cap < entries.size() * 2) cap <<= 1;
  table_.assign(cap, Entry{kEmpty, 0, 0});
  mask_ = cap - 1;
  shift_ = 64 - std::countr_zero(cap);
  for (const auto& e : entries) {
    size_t i = slot(e.key);
    while (table_[i].key != kEmpty && table_[i].key != e.key) i = (i + 1) & mask_;
    if (table_[i].key == kEmpty) table_[i] = e;  // first (lowest-rank) entry wins
  }
}

StatusOr<std::unique_ptr<BpeModel>> BpeModel::load(const json& model, bool byte_level) {
  const std::string type = model.value("type", "");
  if (type != "BPE") return unimplemented("unsupported model type '" + type + "'");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return invalid_argument("model.vocab missing or not an object");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(k) && model[k].is_string() && !model[k].get<std::string>().empty())
      return unimplemented(std::string("BPE ") + k + " '" + model[k].get<std::string>() + "'");
  }
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    return unimplemented("BPE dropout");

  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  m->byte_level_ = byte_level;
  m->byte_fallback_ = model.value("byte_fallback", false);
  m->fuse_unk_ = model.value("fuse_unk", false);
  m->ignore_merges_ = model.value("ignore_merges", false);

  const json& vocab = model["vocab"];
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max(max_id, it.value().get<int32_t>());
  m->tokens_.assign(max_id + 1, std::string());
  m->vocab_.reserve(vocab.size());
  if (byte_level) m->file_vocab_.reserve(vocab.size());
  std::string raw;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = it.value().get<int32_t>();
    if (id < 0) return invalid_argument("model.vocab: negative id for '" + it.key() + "'");
    m->tokens_[id] = it.key();
    if (byte_level) {
      m->file_vocab_.emplace(it.key(), id);
      raw.clear();
      // Tokens that are not byte-level text keep their UTF-8 (never produced by BPE on bytes).
      if (!byte_level_map().to_bytes(it.key(), raw)) raw = it.key();
      m->vocab_.emplace(raw, id);
    } else {
      m->vocab_.emplace(it.key(), id);
    }
  }
  std::fill(std::begin(m->byte_ids_), std::end(m->byte_ids_), -1);
  for (int b = 0; b < 256; ++b) {
    if (byte_level) {
      auto it = m->vocab_.find(std::string(1, static_cast<char>(b)));
      if (it != m->vocab_.end()) m->byte_ids_[b] = it->second;
    } else if (m->byte_fallback_) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = m->vocab_.find(std::string_view(name));
      if (it != m->vocab_.end()) m->byte_ids_[b] = it->second;
    }
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string unk = model["unk_token"].get<std::string>();
    auto it = m->file_vocab_.empty() ? m->vocab_.find(unk) : m->file_vocab_.find(unk);
    if (it == (m->file_vocab_.empty() ? m->vocab_.end() : m->file_vocab_.end()))
      return invalid_argument("model.unk_token '" + unk + "' is not in the vocabulary");
    m->unk_id_ = it->second;
  }

  // Merges: "a b" strings (older files) or ["a", "b"] pairs.
  const json& merges = model.contains("merges") ? model["merges"] : json::array();
  std::vector<MergeTable::Entry> entries;
  entries.reserve(merges.size());
  std::string left, right;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& mg = merges[rank];
    if (mg.is_string()) {
      const std::string& s = mg.get_ref<const std::string&>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) return invalid_argument("model.merges[" + std::to_string(rank) + "] '" + s + "' has no space");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (mg.is_array() && mg.size() == 2) {
      left = mg[0].get<std::string>();
      right = mg[1].get<std::string>();
    } else {
      return invalid_argument("model.merges[" + std::to_string(rank) + "] is malformed");
    }
    auto id_of = [&](const std::string& t) -> int32_t {
      const auto& map = byte_level ? m->file_vocab_ : m->vocab_;
      auto it = map.find(t);
      return it == map.end() ? -1 : it->second;
    };
    const int32_t a = id_of(left), b = id_of(right), c = id_of(left + right);
    if (a < 0 || b < 0 || c < 0)
      return invalid_argument("model.merges[" + std::to_string(rank) + "] '" + left + " " + right +
                              "' uses a token missing from the vocabulary");
    entries.push_back({(static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b),
                       static_cast<int32_t>(rank), c});
  }
  m->merges_.build(entries);
  return m;
}

std::optional<int32_t> BpeModel::id_of(std::string_view token) const {
  const auto& map = byte_level_ ? file_vocab_ : vocab_;
  auto it = map.find(token);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_ || word.size() == 1) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() > kCacheMaxWordBytes) {
    merge_word(word, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t mark = out.size();
  merge_word(word, out);
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= kCacheMaxEntries) cache_.clear();
  cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + mark, out.end()));
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Initial symbols: one per byte (byte-level) or per character, with byte
  // fallback or (fused) unk for characters missing from the vocabulary.
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  auto add = [&](int32_t id) {
    const int32_t n = static_cast<int32_t>(sym.size());
    sym.push_back({id, n - 1, -1, true});
    if (n > 0) sym[n - 1].next = n;
  };
  if (byte_level_) {
    for (char c : word) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) add(id);
      else if (unk_id_ >= 0 && !(fuse_unk_ && !sym.empty() && sym.back().id == unk_id_)) add(unk_id_);
    }
  } else {
    bool pending_unk = false;  // HF fuses consecutive unknowns only
    for (size_t i = 0; i < word.size();) {
      size_t n = unicode::utf8_char_len(word.substr(i));
      if (!n) n = 1;
      auto it = vocab_.find(word.substr(i, n));
      if (it != vocab_.end()) {
        pending_unk = false;
        add(it->second);
      } else {
        bool done = false;
        if (byte_fallback_) {
          done = true;
          for (size_t k = 0; k < n; ++k) done = done && byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
          if (done)
            for (size_t k = 0; k < n; ++k) add(byte_ids_[static_cast<uint8_t>(word[i + k])]);
        }
        if (done) {
          pending_unk = false;
        } else if (unk_id_ >= 0) {
          if (!(fuse_unk_ && pending_unk)) add(unk_id_);
          pending_unk = true;
        }
      }
      i += n;
    }
  }
  if (sym.empty()) return;

  if (sym.size() <= kSmallWord) {
    // Repeatedly merge the lowest-rank adjacent pair (leftmost on ties).
    size_t n = sym.size();
    std::vector<int32_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = sym[i].id;
    while (n > 1) {
      int32_t best_rank = INT32_MAX, best_id = 0;
      size_t best = 0;
      for (size_t i = 0; i + 1 < n; ++i) {
        const MergeTable::Entry* e = merges_.find(ids[i], ids[i + 1]);
        if (e && e->rank < best_rank) {
          best_rank = e->rank;
          best_id = e->id;
          best = i;
        }
      }
      if (best_rank == INT32_MAX) break;
      ids[best] = best_id;
      ids.erase(ids.begin() + best + 1);
      --n;
    }
    out.insert(out.end(), ids.begin(), ids.begin() + n);
    return;
  }

  // Long words: a min-heap of (rank, position) over a linked list of symbols;
  // stale entries are skipped when popped (the pair there changed).
  struct Cand {
    int32_t rank, pos, id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    if (const MergeTable::Entry* e = merges_.find(sym[pos].id, sym[sym[pos].next].id))
      heap.push({e->rank, pos, e->id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Symbol& s = sym[c.pos];
    if (!s.live || s.next < 0) continue;
    const MergeTable::Entry* e = merges_.find(s.id, sym[s.next].id);
    if (!e || e->id != c.id) continue;
    Symbol& r = sym[s.next];
    r.live = false;
    s.id = c.id;
    s.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.pos;
    push(s.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace tandem::hf
