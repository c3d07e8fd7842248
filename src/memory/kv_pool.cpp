#include "memory/kv_pool.h"

#include <algorithm>
#include <numeric>

#include "common/check.h"

namespace tandem::memory {

const char* acquire_status_name(AcquireStatus s) {
  switch (s) {
    case AcquireStatus::kOk: return "ok";
    case AcquireStatus::kLater: return "later";
    case AcquireStatus::kExhausted: return "exhausted";
  }
  return "?";
}

int64_t choose_chunk_bytes(const std::vector<KvPageGeometry>& pages) {
  constexpr int64_t kGranule = int64_t{2} << 20;
  CHECK(!pages.empty());
  // lcm of a and b, or -1 once it passes kMaxChunkBytes.
  auto lcm_capped = [](int64_t a, int64_t b) -> int64_t {
    if (a < 0) return -1;
    const int64_t g = std::gcd(a, b);
    if (a / g > kMaxChunkBytes / b) return -1;
    return a / g * b;
  };
  int64_t lcm = kGranule, layer_lcm = kGranule, largest = 0;
  for (const KvPageGeometry& p : pages) {
    CHECK_GT(p.layer_page_bytes(), 0);
    CHECK_GT(p.num_layers, 0);
    largest = std::max(largest, p.page_bytes());
    lcm = lcm_capped(lcm, p.page_bytes());
    layer_lcm = lcm_capped(layer_lcm, p.layer_page_bytes());
  }
  if (lcm > 0) return (kMinChunkBytes + lcm - 1) / lcm * lcm;
  CHECK_MSG(layer_lcm > 0, "layer-page sizes have no common multiple under " << kMaxChunkBytes << " bytes");
  const int64_t rounded = (std::max(largest, kMinChunkBytes) + layer_lcm - 1) / layer_lcm * layer_lcm;
  return rounded;
}

KvChunkPool::KvChunkPool(int64_t num_chunks, int64_t chunk_bytes, std::vector<ChunkPoolModel> models)
    : num_chunks_(num_chunks), chunk_bytes_(chunk_bytes) {
  CHECK_GT(chunk_bytes, 0);
  CHECK_GE(num_chunks, 0);
  CHECK(!models.empty());
  int64_t guaranteed = 0;
  for (auto& m : models) {
    CHECK_GE(m.guaranteed_chunks, 0);
    guaranteed += m.guaranteed_chunks;
    ModelState s;
    s.name = std::move(m.name);
    s.guaranteed = m.guaranteed_chunks;
    models_.push_back(std::move(s));
  }
  CHECK_MSG(guaranteed <= num_chunks, "guarantees " << guaranteed << " exceed the pool's " << num_chunks << " chunks");
  holder_.assign(num_chunks, -1);
  for (int64_t c = num_chunks - 1; c >= 0; --c) free_.push_back(c);  // lowest id handed out first
}

void KvChunkPool::give(int model, ChunkId chunk) {
  holder_[chunk] = model;  // free -> held by model
  models_[model].held++;
}

int KvChunkPool::pick_victim(int claimant, bool forced) const {
  // The model furthest above its guarantee, net of what it already must give.
  int best = -1;
  int64_t best_excess = 0;
  for (int j = 0; j < num_models(); ++j) {
    if (j == claimant) continue;
    const ModelState& m = models_[j];
    const int64_t excess = m.held - m.guaranteed - m.forced_pending - (forced ? 0 : m.idle_pending);
    if (excess > best_excess) {
      best = j;
      best_excess = excess;
    }
  }
  return best;
}

AcquireStatus KvChunkPool::acquire(int model, ChunkId* chunk) {
  int victim = -1;
  const AcquireStatus s = acquire_locked(model, chunk, &victim);
  if (victim >= 0) wake(victim);
  return s;
}

AcquireStatus KvChunkPool::acquire_locked(int model, ChunkId* chunk, int* woken) {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK(model >= 0 && model < num_models());
  ModelState& me = models_[model];
  if (!me.delivered.empty()) {
    *chunk = me.delivered.back();
    me.delivered.pop_back();
    return AcquireStatus::kOk;
  }
  if (!free_.empty()) {
    *chunk = free_.back();
    free_.pop_back();
    give(model, *chunk);
    return AcquireStatus::kOk;
  }
  if (me.held + me.waiting < me.guaranteed) {
    const int victim = pick_victim(model, /*forced=*/true);
    // Someone must hold our guaranteed chunks: sum of guarantees <= num_chunks.
    CHECK_MSG(victim >= 0, "no model above its guarantee while " << me.name << " is below its own");
    models_[victim].forced_pending++;
    me.waiting++;
    claims_.push_back({model, victim, true});
    *woken = victim;
    return AcquireStatus::kLater;
  }
  if (me.waiting > 0) return AcquireStatus::kLater;
  if (!me.idle_claim_open) {
    const int victim = pick_victim(model, /*forced=*/false);
    if (victim >= 0) {
      models_[victim].idle_pending++;
      me.idle_claim_open = true;
      claims_.push_back({model, victim, false});
      *woken = victim;
    }
  }
  return AcquireStatus::kExhausted;
}

std::vector<ChunkId> KvChunkPool::take_delivered(int model) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ChunkId> out;
  out.swap(models_[model].delivered);
  return out;
}

void KvChunkPool::release(int model, ChunkId chunk) {
  const int claimant = release_locked(model, chunk);
  if (claimant >= 0) wake(claimant);
}

int KvChunkPool::release_locked(int model, ChunkId chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK(chunk >= 0 && chunk < num_chunks_);
  CHECK_MSG(holder_[chunk] == model, "chunk " << chunk << " released by " << models_[model].name
                                              << " but held by " << holder_[chunk]);
  holder_[chunk] = -1;  // held -> free (for a moment)
  models_[model].held--;
  // A claim on this model first (forced before idle-only, oldest first), then any claim.
  auto it = std::find_if(claims_.begin(), claims_.end(), [&](const Claim& c) { return c.victim == model && c.forced; });
  if (it == claims_.end())
    it = std::find_if(claims_.begin(), claims_.end(), [&](const Claim& c) { return c.victim == model; });
  if (it == claims_.end()) it = claims_.begin();
  if (it == claims_.end()) {
    free_.push_back(chunk);
    return -1;
  }
  const Claim claim = *it;
  claims_.erase(it);
  ModelState& victim = models_[claim.victim];
  ModelState& claimant = models_[claim.claimant];
  if (claim.forced) {
    victim.forced_pending--;
    claimant.waiting--;
  } else {
    victim.idle_pending--;
    claimant.idle_claim_open = false;
  }
  give(claim.claimant, chunk);  // free -> held by the claimant, delivered on its next step
  claimant.delivered.push_back(chunk);
  return claim.claimant;
}

void KvChunkPool::set_wakeup(int model, std::function<void()> wakeup) {
  std::lock_guard<std::mutex> lock(mu_);
  models_[model].wakeup = std::move(wakeup);
}

void KvChunkPool::wake(int model) {
  std::function<void()> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    f = models_[model].wakeup;
  }
  if (f) f();
}

ReclaimRequest KvChunkPool::reclaim_request(int model) const {
  std::lock_guard<std::mutex> lock(mu_);
  return {models_[model].forced_pending, models_[model].idle_pending};
}

void KvChunkPool::decline_idle(int model) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = claims_.begin(); it != claims_.end();) {
    if (it->victim == model && !it->forced) {
      models_[model].idle_pending--;
      models_[it->claimant].idle_claim_open = false;
      it = claims_.erase(it);
    } else {
      ++it;
    }
  }
}

ChunkPoolStats KvChunkPool::stats(int model) const {
  std::lock_guard<std::mutex> lock(mu_);
  const ModelState& me = models_[model];
  ChunkPoolStats s;
  s.guaranteed = me.guaranteed;
  s.held = me.held;
  s.borrowed = std::max<int64_t>(0, me.held - me.guaranteed);
  s.forced_pending = me.forced_pending;
  s.idle_pending = me.idle_pending;
  s.waiting = me.waiting;
  // Lent in total: unused guarantees not covered by free chunks; attributed in model order.
  int64_t unused_total = 0;
  for (const ModelState& m : models_) unused_total += std::max<int64_t>(0, m.guaranteed - m.held);
  int64_t lent_left = std::max<int64_t>(0, unused_total - static_cast<int64_t>(free_.size()));
  for (int j = 0; j <= model; ++j) {
    const int64_t unused = std::max<int64_t>(0, models_[j].guaranteed - models_[j].held);
    const int64_t lent = std::min(unused, lent_left);
    lent_left -= lent;
    if (j == model) s.lent = lent;
  }
  return s;
}

int64_t KvChunkPool::num_free() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(free_.size());
}

int KvChunkPool::holder(ChunkId chunk) const {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK(chunk >= 0 && chunk < num_chunks_);
  return holder_[chunk];
}

KvPageSource::KvPageSource(KvChunkPool* pool, int model, const KvPageGeometry& geometry)
    : pool_(pool), model_(model), page_bytes_(geometry.page_bytes()),
      layer_page_bytes_(geometry.layer_page_bytes()),
      pages_per_chunk_(page_bytes_ > 0 ? pool->chunk_bytes() / page_bytes_ : 0),
      layer_pages_per_chunk_(layer_page_bytes_ > 0 ? pool->chunk_bytes() / layer_page_bytes_ : 0) {
  CHECK(model >= 0 && model < pool->num_models());
  CHECK_GT(page_bytes_, 0);
  CHECK_MSG(pages_per_chunk_ >= 1, "page of " << page_bytes_ << " bytes does not fit a chunk of " << pool->chunk_bytes());
  CHECK_MSG(pool->chunk_bytes() % layer_page_bytes_ == 0,
            "chunk of " << pool->chunk_bytes() << " bytes is not a whole number of layer-pages of " << layer_page_bytes_);
}

int64_t KvPageSource::view_num_pages(int64_t layer, bool is_v) const {
  return pool_->num_chunks() * layer_pages_per_chunk_ - view_offset(layer, is_v) / layer_page_bytes_;
}

AcquireStatus KvPageSource::grow(ChunkedPageOwner& owner) {
  ChunkId chunk = -1;
  const AcquireStatus s = pool_->acquire(model_, &chunk);
  if (s == AcquireStatus::kOk) {
    held_.push_back(chunk);
    owner.add_pages(pages_of(chunk));  // unused -> free
  }
  return s;
}

void KvPageSource::release_chunk(size_t index) {
  const ChunkId chunk = held_[index];
  held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(index));
  pool_->release(model_, chunk);
}

int64_t KvPageSource::service(ChunkedPageOwner& owner) {
  for (ChunkId chunk : pool_->take_delivered(model_)) {
    held_.push_back(chunk);
    owner.add_pages(pages_of(chunk));  // offline -> free
  }
  int64_t released = 0;
  // Chunks draining since an earlier step: released once their pages are all offline.
  for (size_t i = draining_.size(); i-- > 0;) {
    if (!owner.vacate(pages_of(draining_[i]), /*may_preempt=*/true)) continue;
    const ChunkId chunk = draining_[i];
    draining_.erase(draining_.begin() + static_cast<std::ptrdiff_t>(i));
    pool_->release(model_, chunk);
    ++released;
  }
  const ReclaimRequest req = pool_->reclaim_request(model_);
  // The pool counts a forced request until the chunk comes back, draining ones included.
  const int64_t to_start = req.forced - static_cast<int64_t>(draining_.size());
  for (int64_t k = 0; k < to_start && !held_.empty(); ++k) {
    // Fewest pages in use first: the least recomputation; ties to the highest chunk id.
    size_t best = 0;
    int64_t best_used = -1;
    for (size_t i = 0; i < held_.size(); ++i) {
      const int64_t used = owner.num_pages_in_use(pages_of(held_[i]));
      if (best_used < 0 || used < best_used || (used == best_used && held_[i] > held_[best])) {
        best = i;
        best_used = used;
      }
    }
    if (start_forced(owner, best)) ++released;
  }
  int64_t idle_left = req.idle_only;
  for (size_t i = held_.size(); i-- > 0 && idle_left > 0;) {
    if (owner.num_pages_in_use(pages_of(held_[i])) != 0) continue;
    if (!owner.vacate(pages_of(held_[i]), /*may_preempt=*/false)) continue;  // free/cached -> offline
    release_chunk(i);
    --idle_left;
    ++released;
  }
  if (idle_left > 0) pool_->decline_idle(model_);
  return released;
}

bool KvPageSource::start_forced(ChunkedPageOwner& owner, size_t index) {
  const ChunkId chunk = held_[index];
  if (owner.vacate(pages_of(chunk), /*may_preempt=*/true)) {  // in use -> preempted -> offline
    release_chunk(index);
    return true;
  }
  held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(index));  // online -> draining
  draining_.push_back(chunk);
  return false;
}

}  // namespace tandem::memory
