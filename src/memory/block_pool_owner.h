// ChunkedPageOwner over a model's page pool with kv/BlockPool's interface
// (engine branch): capacity = KvPageSource::max_pages(), pages of chunks not
// held are kOffline. A template so this header does not depend on kv/; the
// engine instantiates it with tandem::BlockPool:
//   BlockPoolChunkOwner<BlockPool> owner(&pool, [&](std::span<const int32_t> pages) {
//     scheduler.preempt_holders_of(pages);  // drops their KV, recomputed later
//   });
// The pool needs: enum class State {kFree, kCached, kActive, kOffline};
// State state(int32_t); void add_pages(std::span<const int32_t>);
// int withdraw_pages(std::span<const int32_t>) (free/cached -> offline,
// active -> draining, idempotent).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "memory/kv_pool.h"

namespace tandem::memory {

template <typename PagePool>
class BlockPoolChunkOwner : public ChunkedPageOwner {
 public:
  using PreemptFn = std::function<void(std::span<const int32_t> draining_pages)>;

  // `preempt_holders` must preempt every sequence holding one of the pages
  // (releasing all its pages); it runs on the engine thread, between steps.
  BlockPoolChunkOwner(PagePool* pool, PreemptFn preempt_holders)
      : pool_(pool), preempt_holders_(std::move(preempt_holders)) {}

  void add_pages(PageRange r) override {
    const std::vector<int32_t> ids = ids_of(r);
    pool_->add_pages(ids);  // offline -> free
  }

  int64_t num_pages_in_use(PageRange r) const override {
    int64_t n = 0;
    for (int64_t p = r.first_page; p < r.first_page + r.num_pages; ++p)
      n += pool_->state(static_cast<int32_t>(p)) == PagePool::State::kActive;
    return n;
  }

  bool vacate(PageRange r, bool may_preempt) override {
    if (!may_preempt && num_pages_in_use(r) > 0) return false;
    const std::vector<int32_t> ids = ids_of(r);
    pool_->withdraw_pages(ids);  // free/cached -> offline; active -> draining
    std::vector<int32_t> draining = still_online(ids);
    if (draining.empty()) return true;
    preempt_holders_(draining);  // their last release takes the pages offline
    return still_online(ids).empty();
  }

 private:
  static std::vector<int32_t> ids_of(PageRange r) {
    std::vector<int32_t> ids;
    ids.reserve(static_cast<size_t>(r.num_pages));
    for (int64_t p = r.first_page; p < r.first_page + r.num_pages; ++p) ids.push_back(static_cast<int32_t>(p));
    return ids;
  }
  std::vector<int32_t> still_online(const std::vector<int32_t>& ids) const {
    std::vector<int32_t> out;
    for (int32_t id : ids)
      if (pool_->state(id) != PagePool::State::kOffline) out.push_back(id);
    return out;
  }

  PagePool* pool_;
  PreemptFn preempt_holders_;
};

}  // namespace tandem::memory
