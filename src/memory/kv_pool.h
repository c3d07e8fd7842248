// One KV memory pool shared by every model under the budget.
//
// Layers, from bytes to tokens:
//   KvChunkPool   (shared, thread-safe) the pool's bytes as `num_chunks` chunks
//                 of `chunk_bytes` each, chunk c at byte offset c x chunk_bytes
//                 of the one KV allocation. Knows who holds each chunk, each
//                 model's guarantee, and who must give chunks back.
//   KvPageSource  (one per model, owned by that model's engine thread) turns
//                 the chunks its model holds into that model's pages and back.
//   ChunkedPageOwner (implemented by the model's page pool in kv/) allocates
//                 pages to sequences; it gets whole chunks of free pages from
//                 its source and gives them back when asked.
//
// Page ids. A model's page pool sees dense ids: chunk c holds pages
// [c x P, (c+1) x P), P = pages per chunk = chunk_bytes / page_bytes, where a
// page is page_size tokens of K and V of every layer (page_bytes = page_size x
// kv_bytes_per_token). Kernels use backend.h's per-layer KV views
// (k, v: [num_pages, page_size, kv_heads, head_dim], contiguous); for them a
// chunk is laid out layer-major,
//     chunk c: [layer 0 K: P layer-pages][layer 0 V: P]...[layer L-1 V: P],
// a layer-page being page_size x kv_heads x head_dim x dtype bytes
// (page_bytes / 2L). Then layer l's K view starts at byte 2l x P x layer_page
// of the allocation, V at (2l+1) x P x layer_page, and dense page p is row
//     kernel_page_id(p) = (p / P) x S + p % P,  S = chunk_bytes / layer_page
// of every one of them: one id per page for all layers, a plain page table,
// no change to kernels. A chunk's bytes never leave [c x chunk_bytes,
// (c+1) x chunk_bytes), whichever model holds it.
//
// Policy: each model has a guaranteed number of chunks; the rest is shared.
// Any free chunk goes to whoever asks (so an idle model's guarantee is lent to
// a busy one). A model below its guarantee that finds no free chunk gets
// kLater and a *forced* reclaim is posted to the model holding the most chunks
// above its guarantee: that model's engine, at its next step, vacates the chunk
// with the fewest pages in use (preempting the sequences there) and releases it;
// the pool hands it straight to the claimant. A model at or above its guarantee
// that finds no free chunk gets kExhausted and an *idle-only* request is posted
// to the model furthest above its guarantee: it returns a chunk only if one has
// no page in use (cached prefix pages are evicted). No weights move and nothing
// restarts; only page ownership changes.
//
// Threading: KvChunkPool has one mutex and is called by engine threads at step
// boundaries; KvPageSource and the page owner belong to one engine thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace tandem::memory {

using ChunkId = int64_t;

// Page ids [first_page, first_page + num_pages) of one model.
struct PageRange {
  int64_t first_page = 0;
  int64_t num_pages = 0;
  bool operator==(const PageRange&) const = default;
};

enum class AcquireStatus {
  kOk,         // a chunk is now held by the caller
  kLater,      // below the guarantee: a reclaim is under way, a later call gets it
  kExhausted,  // at/above the guarantee and nothing free: preempt own sequences or wait
};
const char* acquire_status_name(AcquireStatus s);

// What a model's KV page is made of.
struct KvPageGeometry {
  int64_t num_layers = 0;
  int64_t page_size = 0;  // tokens
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t dtype_bytes = 2;
  int64_t layer_page_bytes() const { return page_size * num_kv_heads * head_dim * dtype_bytes; }
  int64_t page_bytes() const { return 2 * num_layers * layer_page_bytes(); }  // K and V, all layers
};

// Chunk size for a set of models: the least common multiple of all page bytes
// and the 2 MiB device allocation granule, times the smallest factor that makes
// it at least kMinChunkBytes; then pages tile a chunk exactly, no byte wasted.
// If that multiple exceeds kMaxChunkBytes: the largest page rounded up to a
// multiple of every layer-page and 2 MiB, at least kMinChunkBytes (some waste).
inline constexpr int64_t kMinChunkBytes = int64_t{32} << 20;
inline constexpr int64_t kMaxChunkBytes = int64_t{256} << 20;
int64_t choose_chunk_bytes(const std::vector<KvPageGeometry>& pages);

struct ChunkPoolModel {
  std::string name;
  int64_t guaranteed_chunks = 0;
};

// Per-model counts; "lent" is the part of this model's unused guarantee that
// others hold beyond the shared chunks (models in order, so with two models
// it is exact: what the other one borrowed from this one).
struct ChunkPoolStats {
  int64_t guaranteed = 0;
  int64_t held = 0;      // including chunks handed over but not yet taken
  int64_t borrowed = 0;  // held above the guarantee
  int64_t lent = 0;
  int64_t forced_pending = 0;  // chunks this model must vacate
  int64_t idle_pending = 0;    // chunks this model is asked to give if idle
  int64_t waiting = 0;         // chunks this model waits for (forced claims)
};

// What a model is asked to give back right now.
struct ReclaimRequest {
  int64_t forced = 0;     // must vacate (preempt if needed)
  int64_t idle_only = 0;  // give only if a chunk has no page in use
};

class KvChunkPool {
 public:
  // CHECKs: chunk_bytes > 0, num_chunks >= 0, sum of guarantees <= num_chunks.
  KvChunkPool(int64_t num_chunks, int64_t chunk_bytes, std::vector<ChunkPoolModel> models);
  KvChunkPool(const KvChunkPool&) = delete;
  KvChunkPool& operator=(const KvChunkPool&) = delete;

  int64_t num_chunks() const { return num_chunks_; }
  int64_t chunk_bytes() const { return chunk_bytes_; }
  int num_models() const { return static_cast<int>(models_.size()); }
  const std::string& model_name(int model) const { return models_[model].name; }

  // One more chunk for `model` (see the policy above). On kOk *chunk is set.
  AcquireStatus acquire(int model, ChunkId* chunk);
  // Chunks handed to `model` by others' releases since it last asked
  // (free -> held by model). The caller adds their pages.
  std::vector<ChunkId> take_delivered(int model);
  // `model` gives back `chunk`, none of whose pages it uses any more. Goes to
  // the oldest claimant (preferring one that claimed from this model), else free.
  void release(int model, ChunkId chunk);
  ReclaimRequest reclaim_request(int model) const;
  // Called (outside the pool's lock, on the claimant's thread) whenever a
  // request is posted to `model` or a chunk is delivered to it, so an engine
  // blocked waiting for work wakes up and calls KvPageSource::service.
  void set_wakeup(int model, std::function<void()> wakeup);
  // An idle-only request that `model` cannot honour now (every chunk it holds
  // has pages in use) is dropped, so the claimant may ask again later.
  void decline_idle(int model);

  ChunkPoolStats stats(int model) const;
  int64_t num_free() const;
  // Holder of a chunk (-1 = free); for tests and metrics.
  int holder(ChunkId chunk) const;

 private:
  struct Claim {
    int claimant;
    int victim;
    bool forced;
  };
  struct ModelState {
    std::string name;
    int64_t guaranteed = 0;
    int64_t held = 0;
    int64_t forced_pending = 0;  // GUARDED_BY(mu_)
    int64_t idle_pending = 0;
    int64_t waiting = 0;         // forced claims not yet delivered
    bool idle_claim_open = false;
    std::vector<ChunkId> delivered;
    std::function<void()> wakeup;
  };

  int pick_victim(int claimant, bool forced) const;  // REQUIRES(mu_)
  void give(int model, ChunkId chunk);                // REQUIRES(mu_)
  void wake(int model);                               // EXCLUDES(mu_)
  AcquireStatus acquire_locked(int model, ChunkId* chunk, int* woken);  // takes mu_
  int release_locked(int model, ChunkId chunk);       // takes mu_; the claimant served or -1

  const int64_t num_chunks_;
  const int64_t chunk_bytes_;
  mutable std::mutex mu_;
  std::vector<ModelState> models_;  // GUARDED_BY(mu_)
  std::vector<int> holder_;         // chunk -> model, -1 free; GUARDED_BY(mu_)
  std::vector<ChunkId> free_;       // stack, lowest id on top; GUARDED_BY(mu_)
  std::deque<Claim> claims_;        // oldest first; GUARDED_BY(mu_)
};

// Implemented by a model's page pool (kv/). All calls come from that model's
// engine thread, between steps. kv/BlockPool maps onto it directly: dense page
// ids [0, max_pages) are its capacity, pages of chunks not held are kOffline;
// add_pages = BlockPool::add_pages; vacate = BlockPool::withdraw_pages (active
// pages drain) plus preempting the sequences that hold draining pages.
class ChunkedPageOwner {
 public:
  virtual ~ChunkedPageOwner() = default;
  // A chunk arrived: these pages come online, free (offline -> free).
  virtual void add_pages(PageRange range) = 0;
  // Pages of `range` referenced by a sequence (cached-but-free pages do not count).
  virtual int64_t num_pages_in_use(PageRange range) const = 0;
  // Takes every page of `range` offline.
  // Idle-only (may_preempt false): only if no page is in use (cached pages are
  // dropped); returns true when done, false with nothing changed otherwise.
  // Forced (may_preempt true): free and cached pages go offline now; pages in
  // use drain and the sequences holding them are preempted (KV dropped,
  // recomputed later), now or within the step. Returns true once the whole
  // range is offline; false while pages still drain: the source calls again
  // on later steps (same range, must be harmless) and releases the chunk then.
  virtual bool vacate(PageRange range, bool may_preempt) = 0;
};

// One model's view of the pool. Not thread-safe: its engine thread owns it.
class KvPageSource {
 public:
  // CHECKs: a page fits a chunk; chunk_bytes is a multiple of the layer-page.
  KvPageSource(KvChunkPool* pool, int model, const KvPageGeometry& geometry);
  KvPageSource(const KvPageSource&) = delete;
  KvPageSource& operator=(const KvPageSource&) = delete;

  const KvChunkPool& pool() const { return *pool_; }
  int model() const { return model_; }
  int64_t page_bytes() const { return page_bytes_; }
  int64_t layer_page_bytes() const { return layer_page_bytes_; }
  int64_t layer_pages_per_chunk() const { return layer_pages_per_chunk_; }
  int64_t pages_per_chunk() const { return pages_per_chunk_; }
  // Size of this model's page-id space: every chunk of the pool in its pages.
  int64_t max_pages() const { return pool_->num_chunks() * pages_per_chunk_; }
  PageRange pages_of(ChunkId chunk) const { return {chunk * pages_per_chunk_, pages_per_chunk_}; }
  ChunkId chunk_of(int64_t page_id) const { return page_id / pages_per_chunk_; }
  // Page-table id of dense page `page_id` in every layer's K and V view.
  int64_t kernel_page_id(int64_t page_id) const {
    return chunk_of(page_id) * layer_pages_per_chunk_ + page_id % pages_per_chunk_;
  }
  // Layer `layer`'s K (is_v false) or V view: byte offset of its row 0 in the
  // pool's allocation, and its number of rows (to the end of the pool).
  int64_t view_offset(int64_t layer, bool is_v) const { return (2 * layer + (is_v ? 1 : 0)) * pages_per_chunk_ * layer_page_bytes_; }
  int64_t view_num_pages(int64_t layer, bool is_v) const;
  // Byte offset in the pool of layer `layer`'s K or V rows of dense page `page_id`.
  int64_t byte_offset(int64_t layer, bool is_v, int64_t page_id) const {
    return view_offset(layer, is_v) + kernel_page_id(page_id) * layer_page_bytes_;
  }

  // Asks for one more chunk; on kOk its pages were added to `owner`.
  AcquireStatus grow(ChunkedPageOwner& owner);
  // Once per step, before scheduling: takes delivered chunks (adds their
  // pages), finishes chunks still draining, then answers reclaim requests:
  // forced ones vacate the held chunks with the fewest pages in use
  // (preempting), idle-only ones only chunks with none in use. Returns the
  // number of chunks released to the pool.
  int64_t service(ChunkedPageOwner& owner);

  // Chunks whose pages the owner has online (draining ones excluded).
  const std::vector<ChunkId>& held_chunks() const { return held_; }
  const std::vector<ChunkId>& draining_chunks() const { return draining_; }
  int64_t num_pages() const { return static_cast<int64_t>(held_.size()) * pages_per_chunk_; }

 private:
  void release_chunk(size_t index);
  // Starts vacating held_[index] (forced); released now or on a later step.
  bool start_forced(ChunkedPageOwner& owner, size_t index);

  KvChunkPool* pool_;
  const int model_;
  const int64_t page_bytes_;
  const int64_t layer_page_bytes_;
  const int64_t pages_per_chunk_;
  const int64_t layer_pages_per_chunk_;  // S: chunk_bytes / layer_page_bytes
  std::vector<ChunkId> held_;      // chunks whose pages the owner has online
  std::vector<ChunkId> draining_;  // forced vacates not finished yet (pages draining)
};

}  // namespace tandem::memory
