// BlockPool: the KV pages of one model, as host-side metadata only (page ids,
// reference counts, prefix hashes). It never touches device memory.
//
// A page is in exactly one state:
//   kFree     ref 0, no hash, on the free list (taken first by allocate)
//   kCached   ref 0, holds a prefix hash, on the LRU list (evicted oldest first)
//   kActive   ref > 0, in one or more block tables (maybe hashed, maybe draining)
//   kOffline  not lent to this model (the shared pool took it back, or never gave it)
// Page ids are fixed in [0, capacity); the set of online ids can grow and shrink
// while running (add_pages / withdraw_pages) so a shared pool can lend pages.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace tandem {

// Answer of a two-phase allocation: a full pool is a value, not an error.
enum class AllocStatus {
  kOk,          // fits now
  kLater,       // does not fit now; would fit once other sequences free pages
  kImpossible,  // more than every online page: never fits
};
const char* alloc_status_name(AllocStatus s);

using BlockHash = uint64_t;

// Chained hash of one full block: parent is the previous block's hash, or the
// model's salt for block 0, so equal tokens under different prefixes differ.
BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens);

class BlockPool {
 public:
  enum class State : uint8_t { kFree, kCached, kActive, kOffline };

  // Ids [0, num_pages) start free; [num_pages, capacity) start offline.
  // capacity < 0 means capacity = num_pages.
  BlockPool(int page_size, int num_pages, int capacity = -1, bool enable_prefix_caching = true);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int page_size() const { return page_size_; }
  int capacity() const { return static_cast<int>(pages_.size()); }
  int num_online() const { return num_online_; }
  // Allocatable now: free plus cached (evictable).
  int num_free() const { return free_.size + lru_.size; }
  int num_cached_free() const { return lru_.size; }
  int num_active() const { return num_active_; }
  int num_draining() const { return num_draining_; }
  bool prefix_caching() const { return prefix_caching_; }

  State state(int32_t page) const { return pages_[page].state; }
  int ref_count(int32_t page) const { return pages_[page].ref; }
  bool is_draining(int32_t page) const { return pages_[page].draining; }
  bool has_hash(int32_t page) const { return pages_[page].hashed; }

  // Phase one (const): can `n` new pages be had, given that `num_reviving`
  // cached pages are about to be retained (they leave the evictable set)?
  AllocStatus can_allocate(int n, int num_reviving = 0) const;
  // Phase two: takes n pages (ref 1), free list first, then least recently used
  // cached pages (their hashes are dropped). CHECKs that they exist.
  void allocate(int n, std::vector<int32_t>* out);
  // Another holder of an active or cached page.
  void retain(int32_t page);
  // A holder lets go; at ref 0 the page becomes cached (hashed), free or offline.
  void release(int32_t page);

  // Prefix cache. lookup returns the page holding exactly these tokens under
  // this hash (or -1); the tokens are compared, so a hash collision is a miss.
  int32_t lookup(BlockHash hash, std::span<const int32_t> tokens) const;
  // Publishes a full, computed, active page. A hash already published by
  // another page is kept there (this page stays unhashed). Returns true if published.
  bool publish(int32_t page, BlockHash hash, std::span<const int32_t> tokens);

  // Capacity changes (the shared KV pool lending and taking back pages).
  // add_pages: offline -> free. withdraw_pages: free/cached -> offline at once;
  // active pages are marked draining (unpublished, so no new holder finds
  // them) and go offline when released. Returns the number left draining; the
  // owner of the block tables must preempt their holders.
  void add_pages(std::span<const int32_t> ids);
  int withdraw_pages(std::span<const int32_t> ids);

  // Walks every list and counter; CHECK-fails on any inconsistency.
  void check_invariants() const;

 private:
  // Intrusive doubly linked list over page ids (prev_/next_ in Page).
  struct List {
    int32_t head = -1, tail = -1;
    int size = 0;
  };
  struct Page {
    int32_t ref = 0;
    State state = State::kOffline;
    bool hashed = false;
    bool draining = false;
    int32_t prev = -1, next = -1;
    BlockHash hash = 0;
  };

  void list_push_front(List& l, int32_t id);
  void list_push_back(List& l, int32_t id);
  void list_remove(List& l, int32_t id);
  int32_t list_pop_front(List& l);
  void unpublish(int32_t page);

  int page_size_;
  bool prefix_caching_;
  std::vector<Page> pages_;
  std::vector<int32_t> page_tokens_;  // [capacity, page_size] tokens of hashed pages
  std::unordered_map<BlockHash, int32_t> hash_to_page_;
  List free_;  // kFree; allocation takes the front, releases push to the front
  List lru_;   // kCached; eviction takes the front (least recently released)
  int num_online_ = 0;
  int num_active_ = 0;
  int num_draining_ = 0;
};

}  // namespace tandem
