#include "kv/block_pool.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace tandem {

const char* alloc_status_name(AllocStatus s) {
  switch (s) {
    case AllocStatus::kOk: return "ok";
    case AllocStatus::kLater: return "later";
    case AllocStatus::kImpossible: return "impossible";
  }
  return "?";
}

BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
}

BlockPool::BlockPool(int page_size, int num_pages, int capacity, bool enable_prefix_caching)
    : page_size_(page_size), prefix_caching_(enable_prefix_caching) {
  CHECK_GT(page_size, 0);
  CHECK_GE(num_pages, 0);
  if (capacity < 0) capacity = num_pages;
  CHECK_GE(capacity, num_pages);
  pages_.resize(capacity);
  if (prefix_caching_) page_tokens_.resize(static_cast<size_t>(capacity) * page_size);
  for (int32_t id = 0; id < num_pages; ++id) {
    pages_[id].state = State::kFree;  // offline -> free
    list_push_back(free_, id);
  }
  num_online_ = num_pages;
}

void BlockPool::list_push_front(List& l, int32_t id) {
  Page& p = pages_[id];
  p.prev = -1;
  p.next = l.head;
  if (l.head >= 0) pages_[l.head].prev = id; else l.tail = id;
  l.head = id;
  ++l.size;
}

void BlockPool::list_push_back(List& l, int32_t id) {
  Page& p = pages_[id];
  p.next = -1;
  p.prev = l.tail;
  if (l.tail >= 0) pages_[l.tail].next = id; else l.head = id;
  l.tail = id;
  ++l.size;
}

void BlockPool::list_remove(List& l, int32_t id) {
  Page& p = pages_[id];
  if (p.prev >= 0) pages_[p.prev].next = p.next; else l.head = p.next;
  if (p.next >= 0) pages_[p.next].prev = p.prev; else l.tail = p.prev;
  p.prev = p.next = -1;
  --l.size;
}

int32_t BlockPool::list_pop_front(List& l) {
  int32_t id = l.head;
  CHECK_GE(id, 0);
  list_remove(l, id);
  return id;
}

void BlockPool::unpublish(int32_t page) {
  Page& p = pages_[page];
  if (!p.hashed) return;
  auto it = hash_to_page_.find(p.hash);
  CHECK(it != hash_to_page_.end() && it->second == page);
  hash_to_page_.erase(it);
  p.hashed = false;
}

AllocStatus BlockPool::can_allocate(int n, int num_reviving) const {
  int usable = num_online_ - num_draining_;
  if (n > usable) return AllocStatus::kImpossible;
  if (n + num_reviving > num_free()) return AllocStatus::kLater;
  return AllocStatus::kOk;
}

void BlockPool::allocate(int n, std::vector<int32_t>* out) {
  CHECK_LE(n, num_free());
  for (int i = 0; i < n; ++i) {
    int32_t id;
    if (free_.size > 0) {
      id = list_pop_front(free_);  // free -> active
    } else {
      id = list_pop_front(lru_);   // cached -> active (evicted: its hash is forgotten)
      unpublish(id);
    }
    Page& p = pages_[id];
    CHECK_EQ(p.ref, 0);
    p.ref = 1;
    p.state = State::kActive;
    ++num_active_;
    out->push_back(id);
  }
}

void BlockPool::retain(int32_t page) {
  Page& p = pages_[page];
  if (p.state == State::kCached) {
    list_remove(lru_, page);  // cached -> active (a prefix hit revives it)
    p.state = State::kActive;
    ++num_active_;
  }
  CHECK_MSG(p.state == State::kActive, "retain of page " << page << " in state " << int(p.state));
  CHECK(!p.draining);
  ++p.ref;
}

void BlockPool::release(int32_t page) {
  Page& p = pages_[page];
  CHECK_MSG(p.state == State::kActive && p.ref > 0, "release of page " << page << " not held");
  if (--p.ref > 0) return;
  --num_active_;
  if (p.draining) {
    p.draining = false;  // active -> offline (the shared pool takes it)
    --num_draining_;
    p.state = State::kOffline;
    --num_online_;
  } else if (p.hashed) {
    p.state = State::kCached;  // active -> cached (kept for prefix hits until evicted)
    list_push_back(lru_, page);
  } else {
    p.state = State::kFree;  // active -> free
    list_push_front(free_, page);
  }
}

int32_t BlockPool::lookup(BlockHash hash, std::span<const int32_t> tokens) const {
  if (!prefix_caching_) return -1;
  auto it = hash_to_page_.find(hash);
  if (it == hash_to_page_.end()) return -1;
  CHECK_EQ(static_cast<int>(tokens.size()), page_size_);
  const int32_t* stored = &page_tokens_[static_cast<size_t>(it->second) * page_size_];
  if (std::memcmp(stored, tokens.data(), tokens.size_bytes()) != 0) return -1;
  return it->second;
}

bool BlockPool::publish(int32_t page, BlockHash hash, std::span<const int32_t> tokens) {
  if (!prefix_caching_) return false;
  Page& p = pages_[page];
  CHECK(p.state == State::kActive);
  CHECK_EQ(static_cast<int>(tokens.size()), page_size_);
  if (p.hashed || p.draining) return false;
  if (!hash_to_page_.emplace(hash, page).second) return false;
  p.hashed = true;
  p.hash = hash;
  std::memcpy(&page_tokens_[static_cast<size_t>(page) * page_size_], tokens.data(), tokens.size_bytes());
  return true;
}

void BlockPool::add_pages(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    CHECK_MSG(id >= 0 && id < capacity(), "page " << id << " outside capacity " << capacity());
    Page& p = pages_[id];
    CHECK_MSG(p.state == State::kOffline, "page " << id << " added twice");
    p.state = State::kFree;  // offline -> free
    list_push_back(free_, id);
    ++num_online_;
  }
}

int BlockPool::withdraw_pages(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    CHECK_MSG(id >= 0 && id < capacity(), "page " << id << " outside capacity " << capacity());
    Page& p = pages_[id];
    switch (p.state) {
      case State::kFree:
        list_remove(free_, id);  // free -> offline
        p.state = State::kOffline;
        --num_online_;
        break;
      case State::kCached:
        list_remove(lru_, id);  // cached -> offline
        unpublish(id);
        p.state = State::kOffline;
        --num_online_;
        break;
      case State::kActive:
        if (!p.draining) {
          unpublish(id);  // active -> active+draining (offline on its last release)
          p.draining = true;
          ++num_draining_;
        }
        break;
      case State::kOffline:
        break;
    }
  }
  return num_draining_;
}

void BlockPool::check_invariants() const {
  int n_free = 0, n_cached = 0, n_active = 0, n_online = 0, n_draining = 0;
  for (int32_t id = 0; id < capacity(); ++id) {
    const Page& p = pages_[id];
    switch (p.state) {
      case State::kFree: ++n_free; CHECK_EQ(p.ref, 0); CHECK(!p.hashed); break;
      case State::kCached: ++n_cached; CHECK_EQ(p.ref, 0); CHECK(p.hashed); break;
      case State::kActive: ++n_active; CHECK_GT(p.ref, 0); break;
      case State::kOffline: CHECK_EQ(p.ref, 0); CHECK(!p.hashed); break;
    }
    if (p.state != State::kOffline) ++n_online;
    if (p.draining) { ++n_draining; CHECK(p.state == State::kActive); CHECK(!p.hashed); }
    if (p.hashed) {
      auto it = hash_to_page_.find(p.hash);
      CHECK(it != hash_to_page_.end() && it->second == id);
    }
  }
  CHECK_EQ(static_cast<int>(hash_to_page_.size()),
           static_cast<int>(std::count_if(pages_.begin(), pages_.end(), [](const Page& p) { return p.hashed; })));
  auto walk = [&](const List& l, State want) {
    int n = 0;
    int32_t prev = -1;
    for (int32_t id = l.head; id >= 0; id = pages_[id].next) {
      CHECK(pages_[id].state == want);
      CHECK_EQ(pages_[id].prev, prev);
      prev = id;
      CHECK_LE(++n, capacity());
    }
    CHECK_EQ(prev, l.tail);
    CHECK_EQ(n, l.size);
  };
  walk(free_, State::kFree);
  walk(lru_, State::kCached);
  CHECK_EQ(n_free, free_.size);
  CHECK_EQ(n_cached, lru_.size);
  CHECK_EQ(n_active, num_active_);
  CHECK_EQ(n_online, num_online_);
  CHECK_EQ(n_draining, num_draining_);
}

}  // namespace tandem
