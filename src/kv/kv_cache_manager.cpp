#include "kv/kv_cache_manager.h"

#include <string>

#include "common/check.h"

namespace tandem {

Status CacheConfig::validate() const {
  if (page_size <= 0 || page_size > 4096)
    return invalid_argument("cache page_size " + std::to_string(page_size) + " not in [1, 4096]");
  if (num_pages < 0) return invalid_argument("cache num_pages " + std::to_string(num_pages) + " < 0");
  if (sliding_window < 0)
    return invalid_argument("cache sliding_window " + std::to_string(sliding_window) + " < 0");
  return ok_status();
}

KvCacheManager::KvCacheManager(const CacheConfig& config, int num_pages, int capacity)
    : page_size_(config.page_size),
      salt_(config.prefix_salt),
      sliding_window_(config.sliding_window),
      pool_(config.page_size, num_pages, capacity, config.enable_prefix_caching) {}

void KvCacheManager::extend_hashes(SeqKv* kv, std::span<const int32_t> tokens) const {
  size_t num_full = tokens.size() / page_size_;
  while (kv->hashes.size() < num_full) {
    size_t b = kv->hashes.size();
    BlockHash parent = b == 0 ? salt_ : kv->hashes[b - 1];
    kv->hashes.push_back(hash_block(parent, tokens.subspan(b * page_size_, page_size_)));
  }
}

PrefixHit KvCacheManager::find_prefix(SeqKv* kv, std::span<const int32_t> tokens) const {
  PrefixHit hit;
  if (!pool_.prefix_caching() || tokens.empty()) return hit;
  extend_hashes(kv, tokens);
  // At most (len - 1) tokens may come from the cache: the last one is computed for its logits.
  size_t max_blocks = (tokens.size() - 1) / page_size_;
  for (size_t b = 0; b < max_blocks; ++b) {
    int32_t page = pool_.lookup(kv->hashes[b], tokens.subspan(b * page_size_, page_size_));
    if (page < 0) break;
    if (pool_.state(page) == BlockPool::State::kCached) ++hit.num_reviving;
    hit.pages.push_back(page);
  }
  return hit;
}

int KvCacheManager::pages_to_write(const SeqKv& kv, int num_computed, int num_tokens,
                                   int* num_copies) const {
  *num_copies = 0;
  int have = static_cast<int>(kv.pages.size());
  if (num_tokens > num_computed) {
    int first = num_computed / page_size_;
    int last = (num_tokens - 1) / page_size_;
    for (int b = first; b <= last && b < have; ++b) {
      int32_t page = kv.pages[b];
      CHECK_GE(page, 0);  // the window never frees a page still being written
      if (pool_.ref_count(page) > 1) ++*num_copies;
    }
  }
  int want = pages_for(num_tokens);
  return want > have ? want - have : 0;
}

AllocStatus KvCacheManager::can_allocate(const SeqKv& kv, const PrefixHit* hit, int num_computed,
                                         int num_tokens) const {
  int num_copies = 0;
  int num_new;
  int reviving = 0;
  if (hit && !hit->pages.empty()) {
    CHECK(kv.pages.empty());
    num_new = pages_for(num_tokens) - static_cast<int>(hit->pages.size());
    reviving = hit->num_reviving;
  } else {
    num_new = pages_to_write(kv, num_computed, num_tokens, &num_copies);
  }
  // Pages a sequence holds at once (window-freed ones excepted) must fit in the pool.
  int held = pages_for(num_tokens) - kv.num_window_freed + num_copies;
  AllocStatus whole = pool_.can_allocate(held);
  if (whole == AllocStatus::kImpossible) return whole;
  return pool_.can_allocate(num_new + num_copies, reviving);
}

void KvCacheManager::allocate(SeqKv* kv, const PrefixHit* hit, int num_computed, int num_tokens,
                              PageCopies* copies) {
  if (hit && !hit->pages.empty()) {
    CHECK(kv->pages.empty());
    for (int32_t page : hit->pages) {
      pool_.retain(page);  // cached -> active, or one more holder of an active page
      kv->pages.push_back(page);
    }
    kv->num_published = static_cast<int>(hit->pages.size());
  }
  int num_copies = 0;
  int num_new = pages_to_write(*kv, num_computed, num_tokens, &num_copies);
  if (num_copies > 0) {
    int first = num_computed / page_size_;
    int last = std::min<int>((num_tokens - 1) / page_size_, static_cast<int>(kv->pages.size()) - 1);
    for (int b = first; b <= last; ++b) {
      int32_t src = kv->pages[b];
      if (pool_.ref_count(src) <= 1) continue;
      std::vector<int32_t> dst;
      pool_.allocate(1, &dst);   // copy-on-write: this sequence gets a private copy
      pool_.release(src);        // the other holders keep the original
      copies->emplace_back(src, dst[0]);
      kv->pages[b] = dst[0];
    }
  }
  if (num_new > 0) pool_.allocate(num_new, &kv->pages);
}

void KvCacheManager::on_computed(SeqKv* kv, std::span<const int32_t> tokens, int num_computed) {
  if (pool_.prefix_caching()) {
    int num_full = num_computed / page_size_;
    if (num_full > kv->num_published) {
      extend_hashes(kv, tokens.subspan(0, static_cast<size_t>(num_full) * page_size_));
      for (int b = kv->num_published; b < num_full; ++b) {
        int32_t page = kv->pages[b];
        if (page >= 0) pool_.publish(page, kv->hashes[b], tokens.subspan(b * page_size_, page_size_));
      }
      kv->num_published = num_full;
    }
  }
  if (sliding_window_ > 0) {
    // The next query is at position >= num_computed and reads keys >= num_computed - window.
    int num_outside = (num_computed - sliding_window_) / page_size_;
    for (int b = kv->num_window_freed; b < num_outside; ++b) {
      pool_.release(kv->pages[b]);
      kv->pages[b] = -1;
    }
    if (num_outside > kv->num_window_freed) kv->num_window_freed = num_outside;
  }
}

void KvCacheManager::free(SeqKv* kv) {
  for (auto it = kv->pages.rbegin(); it != kv->pages.rend(); ++it) {
    if (*it >= 0) pool_.release(*it);
  }
  kv->pages.clear();
  kv->num_published = 0;
  kv->num_window_freed = 0;
}

void KvCacheManager::fork(const SeqKv& src, SeqKv* dst) {
  CHECK(dst->pages.empty());
  for (int32_t page : src.pages) {
    if (page >= 0) pool_.retain(page);
  }
  *dst = src;
}

}  // namespace tandem
