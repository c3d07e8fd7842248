// KvCacheManager: per-sequence block tables over one BlockPool, with prefix
// caching, copy-on-write of shared pages and sliding-window freeing. The
// scheduler talks to this class only; it never sees the pool's lists.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kv/block_pool.h"

namespace tandem {

struct CacheConfig {
  int page_size = 16;                // tokens per KV page
  int num_pages = 0;                 // 0: take ModelRunner::num_pages()
  bool enable_prefix_caching = true; // automatic prefix caching, on by default
  uint64_t prefix_salt = 0;          // model identity mixed into block 0's hash
  int sliding_window = 0;            // 0: full attention; else window in tokens
  Status validate() const;
};

// One sequence's view of the KV cache.
struct SeqKv {
  std::vector<int32_t> pages;    // block table; -1 = freed (wholly outside the sliding window)
  std::vector<BlockHash> hashes; // chained hashes of the sequence's full blocks (survive preemption)
  int num_published = 0;         // blocks [0, num_published) were offered to the prefix cache
  int num_window_freed = 0;      // leading pages already freed by the sliding window
};

// Cached pages found for a sequence's leading full blocks (not yet retained).
struct PrefixHit {
  std::vector<int32_t> pages;
  int num_reviving = 0;  // of those, cached pages with ref 0 (retaining takes them off the free set)
  int num_tokens(int page_size) const { return static_cast<int>(pages.size()) * page_size; }
};

using PageCopies = std::vector<std::pair<int32_t, int32_t>>;  // (src, dst) whole pages

class KvCacheManager {
 public:
  // capacity: page-id bound for later growth (< 0: num_pages).
  KvCacheManager(const CacheConfig& config, int num_pages, int capacity = -1);
  KvCacheManager(const KvCacheManager&) = delete;
  KvCacheManager& operator=(const KvCacheManager&) = delete;

  BlockPool& pool() { return pool_; }
  const BlockPool& pool() const { return pool_; }
  int page_size() const { return page_size_; }
  int pages_for(int num_tokens) const { return (num_tokens + page_size_ - 1) / page_size_; }

  // Longest run of cached leading blocks of `tokens`, leaving at least one
  // token to compute (its logits are needed). Extends kv->hashes. No pool change.
  PrefixHit find_prefix(SeqKv* kv, std::span<const int32_t> tokens) const;

  // Phase one: pages (new ones and copies) for kv to hold slots [0, num_tokens)
  // when tokens [num_computed, num_tokens) are written this step.
  AllocStatus can_allocate(const SeqKv& kv, const PrefixHit* hit, int num_computed,
                           int num_tokens) const;
  // Phase two: retains hit pages (kv must be empty then), copies shared pages
  // about to be written (appends (src, dst) to copies), allocates the rest.
  void allocate(SeqKv* kv, const PrefixHit* hit, int num_computed, int num_tokens,
                PageCopies* copies);

  // After the forward pass computed tokens [0, num_computed): publishes newly
  // full blocks to the prefix cache and frees pages wholly outside the window.
  void on_computed(SeqKv* kv, std::span<const int32_t> tokens, int num_computed);

  // Releases every page (tail first, so a prefix's head is evicted last).
  void free(SeqKv* kv);
  // dst shares all of src's pages (n > 1 choices after the prompt's prefill).
  void fork(const SeqKv& src, SeqKv* dst);

 private:
  int pages_to_write(const SeqKv& kv, int num_computed, int num_tokens, int* num_copies) const;
  void extend_hashes(SeqKv* kv, std::span<const int32_t> tokens) const;

  int page_size_;
  uint64_t salt_;
  int sliding_window_;
  BlockPool pool_;
};

}  // namespace tandem
