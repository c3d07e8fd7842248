// Wiring of the real engine per model: config.json -> backend -> LocalModelRunner
// (weights + paged KV cache) -> EngineThread, plus the tokenizer and the model's
// chat template.
#include <algorithm>
#include <mutex>

#include "backend/registry.h"
#include "engine/engine_thread.h"
#include "memory/plan_format.h"
#include "memory/planner.h"
#include "memory/weights.h"
#include "engine/tokenizer_text_decoder.h"
#include "model/config.h"
#include "model/model_runner.h"
#include "common/log.h"
#include "server/template_chat_renderer.h"
#include "server/model_service.h"
#include "server/serving_budget.h"

namespace tandem::server {
namespace {

// Default context when neither the flags nor the config file give one: the
// model's own limit, capped so a CPU run does not reserve a huge KV cache.
constexpr int kDefaultMaxModelLen = 4096;
// KV pages for this many full-length sequences when no budget is given.
constexpr int kDefaultFullSequences = 4;
constexpr int kPageSize = 16;

// Wakes a model's engine thread for the shared KV pool (a chunk arrived or is
// asked back) until the thread is gone; the pool may call it from any thread.
class PoolWaker {
 public:
  void set(EngineThread* thread) {
    std::lock_guard<std::mutex> lock(mu_);
    thread_ = thread;
  }
  void wake() {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_ != nullptr) thread_->run_on_engine([](Engine& e) { e.service_kv(); });
  }

 private:
  std::mutex mu_;
  EngineThread* thread_ = nullptr;  // GUARDED_BY(mu_)
};

// Owns what the EngineThread borrows (runner, decoder, page source); the thread goes first.
class OwningEngine : public EngineClient {
 public:
  OwningEngine(std::unique_ptr<LocalModelRunner> runner, std::unique_ptr<TokenizerTextDecoder> decoder,
               std::unique_ptr<memory::KvPageSource> source = nullptr)
      : runner_(std::move(runner)), decoder_(std::move(decoder)), source_(std::move(source)),
        weight_bytes_(static_cast<int64_t>(runner_->model().weight_bytes())) {}
  ~OwningEngine() override {
    if (waker_) waker_->set(nullptr);  // the pool may still hold the waker; it must not reach a dead thread
    thread_.reset();
  }
  Status start(EngineConfig config, memory::KvChunkPool* pool = nullptr) {
    config.kv_source = source_.get();
    auto t = EngineThread::start(config, runner_.get(), decoder_.get());
    if (!t.ok()) return t.status();
    thread_ = std::move(t).value();
    if (pool != nullptr) {
      waker_ = std::make_shared<PoolWaker>();
      waker_->set(thread_.get());
      pool->set_wakeup(source_->model(), [w = waker_] { w->wake(); });
    }
    return ok_status();
  }
  Status submit(GenerateRequest request) override { return thread_->submit(std::move(request)); }
  void abort(const std::string& request_id) override { thread_->abort(request_id); }
  EngineStats stats() const override {
    EngineStats s = thread_->stats();
    s.weight_bytes = weight_bytes_;
    return s;
  }
  int max_model_len() const override { return thread_->max_model_len(); }

 private:
  std::unique_ptr<LocalModelRunner> runner_;
  std::unique_ptr<TokenizerTextDecoder> decoder_;
  std::unique_ptr<memory::KvPageSource> source_;  // null without a budget
  const int64_t weight_bytes_;
  std::shared_ptr<PoolWaker> waker_;
  std::unique_ptr<EngineThread> thread_;  // declared last: stopped before what it borrows
};

uint64_t name_salt(const std::string& name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: distinct prefix hashes per served model
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

namespace {

// Tokenizer, chat template and the engine settings common to both paths.
StatusOr<std::unique_ptr<ModelService>> make_service(const std::string& name, const std::string& path,
                                                     const ModelConfig& config, const EngineOptions& options,
                                                     int max_len, EngineConfig* ec) {
  auto prefix = [&](const Status& s) { return Status(s.code(), "model '" + name + "' (" + path + "): " + s.message()); };
  // Dummy weights still need the folder's tokenizer files (text in and out).
  const std::string folder = memory::model_folder(path);
  auto tokenizer = Tokenizer::load(folder);
  if (!tokenizer.ok()) {
    if (options.load_format == "dummy")
      return prefix(Status(tokenizer.status().code(), "--load-format dummy needs tokenizer files next to the config (" +
                                                          tokenizer.status().message() + ")"));
    return prefix(tokenizer.status());
  }
  auto service = std::make_unique<ModelService>();
  service->name = name;
  service->path = path;
  service->tokenizer = std::move(tokenizer).value();
  bool default_template = false;
  auto chat = TemplateChatRenderer::load(folder, &default_template);
  if (!chat.ok()) return prefix(chat.status());
  if (default_template) {
    TANDEM_LOG(kWarning) << "model '" << name << "': no chat template in " << path << "; chat uses ChatML (as transformers' default)";
  }
  service->chat = std::move(chat).value();

  ec->cache.page_size = kPageSize;
  ec->cache.prefix_salt = name_salt(name);
  ec->cache.sliding_window = config.uniform_sliding_window();
  if (options.max_num_seqs > 0) ec->scheduler.max_num_seqs = options.max_num_seqs;
  if (options.max_num_batched_tokens > 0) ec->scheduler.max_num_batched_tokens = options.max_num_batched_tokens;
  if (options.max_queue > 0) ec->scheduler.max_queue_len = options.max_queue;
  ec->scheduler.max_model_len = max_len;
  ec->eos_token_ids = config.eos_token_ids;
  if (ec->eos_token_ids.empty()) {
    if (auto eos = service->tokenizer->eos_token()) {
      if (auto id = service->tokenizer->token_to_id(*eos)) ec->eos_token_ids.push_back(*id);
    }
  }
  return service;
}

// `serve --gpu-budget`: the arena sizes, KV pages and step limits come from the plan.
StatusOr<std::unique_ptr<ModelService>> build_budgeted(const std::string& name, const std::string& path,
                                                       const EngineOptions& options, ServingBudget* budget) {
  auto prefix = [&](const Status& s) { return Status(s.code(), "model '" + name + "' (" + path + "): " + s.message()); };
  const int index = budget->index_of(name);
  if (index < 0) return invalid_argument("model '" + name + "' is not in the memory plan");
  const memory::ModelPlan& mp = budget->plan().models[index];
  const bool dummy = options.load_format == "dummy";
  auto config = dummy ? memory::load_model_config(path) : ModelConfig::load(path);
  if (!config.ok()) return prefix(config.status());

  BackendOptions bo;
  bo.cuda_memory_bytes = static_cast<size_t>(budget->arena_bytes(index));
  auto created = create_backend(budget->device(), bo);
  if (!created.ok()) return prefix(created.status());
  std::shared_ptr<Backend> backend = std::move(created).value();
  auto kv = budget->kv_memory(backend);
  if (!kv.ok()) return prefix(kv.status());

  ModelRunnerOptions ro;
  ro.page_size = kPageSize;
  ro.shared_kv = {*kv, budget->plan().num_chunks, budget->plan().chunk_bytes};
  ro.load.dummy = dummy;
  // The workspace is taken now, at the planned step limits, not grown under load.
  ro.reserve_tokens = budget->max_num_batched_tokens();
  ro.reserve_logits = budget->max_num_seqs();
  auto runner = LocalModelRunner::create(backend, path, ro);
  if (!runner.ok()) return prefix(runner.status());

  memory::KvPageGeometry g;
  g.num_layers = config->num_layers;
  g.page_size = kPageSize;
  g.num_kv_heads = config->num_kv_heads;
  g.head_dim = config->head_dim;
  g.dtype_bytes = static_cast<int64_t>(dtype_size(backend->activation_dtype()));
  auto source = std::make_unique<memory::KvPageSource>(&budget->pool(), index, g);

  EngineConfig ec;
  auto service = make_service(name, path, *config, options, static_cast<int>(mp.max_model_len), &ec);
  if (!service.ok()) return service.status();
  ec.scheduler.max_num_seqs = budget->max_num_seqs();
  ec.scheduler.max_num_batched_tokens = budget->max_num_batched_tokens();
  if (options.max_num_seqs > 0) ec.scheduler.max_num_seqs = options.max_num_seqs;
  if (options.max_num_batched_tokens > 0) ec.scheduler.max_num_batched_tokens = options.max_num_batched_tokens;
  ec.arbiter = &budget->arbiter();
  ec.arbiter_model = index;
  auto engine = std::make_unique<OwningEngine>(std::move(runner).value(),
                                               std::make_unique<TokenizerTextDecoder>(*(*service)->tokenizer),
                                               std::move(source));
  Status s = engine->start(ec, &budget->pool());
  if (!s.ok()) return prefix(s);
  (*service)->engine = std::move(engine);
  return service;
}

}  // namespace

StatusOr<std::unique_ptr<ModelService>> build_model_service(const std::string& name, const std::string& path,
                                                            const EngineOptions& options) {
  auto prefix = [&](const Status& s) { return Status(s.code(), "model '" + name + "' (" + path + "): " + s.message()); };
  if (options.gpu_budget_bytes > 0) {
    return invalid_argument("model '" + name + "': gpu_budget needs the plan of every model; use "
                            "make_model_service_factory (as `tandem serve` does)");
  }
  const bool dummy = options.load_format == "dummy";
  auto config = dummy ? memory::load_model_config(path) : ModelConfig::load(path);
  if (!config.ok()) return prefix(config.status());
  int max_len = options.max_model_len;
  if (max_len <= 0) max_len = std::min(config->max_position_embeddings > 0 ? config->max_position_embeddings
                                                                             : kDefaultMaxModelLen,
                                       kDefaultMaxModelLen);
  if (config->max_position_embeddings > 0 && max_len > config->max_position_embeddings) {
    return invalid_argument("model '" + name + "': max_model_len " + std::to_string(max_len) +
                            " is above the model's max_position_embeddings " +
                            std::to_string(config->max_position_embeddings));
  }
  ModelRunnerOptions ro;
  ro.page_size = kPageSize;
  ro.num_pages = (max_len + kPageSize - 1) / kPageSize * kDefaultFullSequences;
  ro.load.dummy = dummy;

  // A GPU backend takes its memory up front: size it from the planner's formulas
  // (weights + this model's KV pages + workspace + 1 GiB slack) so that several
  // models fit side by side instead of the first taking most of the card.
  BackendOptions bo;
  {
    memory::PlanOptions po;
    if (options.max_num_seqs > 0) po.max_num_seqs = options.max_num_seqs;
    if (options.max_num_batched_tokens > 0) po.max_num_batched_tokens = options.max_num_batched_tokens;
    const int64_t kv = static_cast<int64_t>(ro.num_pages) * kPageSize * config->kv_bytes_per_token(DType::kF16);
    const int64_t act = memory::activation_breakdown(*config, po, max_len).total();
    bo.cuda_memory_bytes = static_cast<size_t>(memory::cuda_resident_weight_bytes(*config) + kv + act +
                                               (int64_t{1} << 30));
  }
  auto backend = create_backend(options.device, bo);
  if (!backend.ok()) return prefix(backend.status());
  auto runner = LocalModelRunner::create(std::move(backend).value(), path, ro);
  if (!runner.ok()) return prefix(runner.status());

  EngineConfig ec;
  auto service = make_service(name, path, *config, options, max_len, &ec);
  if (!service.ok()) return service.status();
  auto engine = std::make_unique<OwningEngine>(std::move(runner).value(),
                                               std::make_unique<TokenizerTextDecoder>(*(*service)->tokenizer));
  Status s = engine->start(ec);
  if (!s.ok()) return prefix(s);
  (*service)->engine = std::move(engine);
  return service;
}

StatusOr<ModelServiceFactory> make_model_service_factory(const ServerConfig& config) {
  if (config.models.empty() || config.models.front().engine.gpu_budget_bytes == 0) {
    return ModelServiceFactory(build_model_service);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ServingBudget> planned, ServingBudget::create(config));
  const std::string table = memory::plan_to_table(planned->plan());
  if (!planned->plan().fits) return resource_exhausted(table);
  TANDEM_LOG(kInfo) << "memory plan (--gpu-budget):\n" << table;
  std::shared_ptr<ServingBudget> budget(std::move(planned));
  return ModelServiceFactory([budget](const std::string& name, const std::string& path, const EngineOptions& options) {
    return build_budgeted(name, path, options, budget.get());
  });
}

}  // namespace tandem::server
