// The served models by name, each in a slot whose state moves
// starting -> ready (or -> failed); an engine that reports itself unhealthy
// makes its slot read as "unhealthy" without touching the others.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/model_service.h"

namespace tandem::server {

class ModelSlot {
 public:
  ModelSlot(std::string name, std::string path, EngineOptions options)
      : name_(std::move(name)), path_(std::move(path)), options_(std::move(options)) {}

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  const EngineOptions& options() const { return options_; }
  ModelMetrics& metrics() { return metrics_; }

  // Null until loaded (and after shutdown).
  std::shared_ptr<ModelService> service() const;
  void set_ready(std::shared_ptr<ModelService> service);
  void set_failed(std::string error);
  std::shared_ptr<ModelService> take_service();  // at shutdown
  // "starting", "ready", "failed" or "unhealthy"; `detail` gets the reason when not ready.
  std::string state(std::string* detail = nullptr) const;

 private:
  const std::string name_;
  const std::string path_;
  const EngineOptions options_;
  ModelMetrics metrics_;
  mutable std::mutex mutex_;
  std::shared_ptr<ModelService> service_;  // GUARDED_BY(mutex_)
  std::string error_;                      // GUARDED_BY(mutex_)
  bool failed_ = false;                    // GUARDED_BY(mutex_)
};

class ModelRegistry {
 public:
  ModelSlot* add(std::string name, std::string path, EngineOptions options);
  ModelSlot* find(const std::string& name) const;
  const std::vector<std::unique_ptr<ModelSlot>>& slots() const { return slots_; }
  std::string names() const;  // "a, b"

 private:
  std::vector<std::unique_ptr<ModelSlot>> slots_;  // fixed after start-up
};

}  // namespace tandem::server
