#include "server/model_registry.h"

namespace tandem::server {

std::shared_ptr<ModelService> ModelSlot::service() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return service_;
}

void ModelSlot::set_ready(std::shared_ptr<ModelService> service) {
  std::lock_guard<std::mutex> lock(mutex_);
  service_ = std::move(service);
}

void ModelSlot::set_failed(std::string error) {
  std::lock_guard<std::mutex> lock(mutex_);
  failed_ = true;
  error_ = std::move(error);
}

std::shared_ptr<ModelService> ModelSlot::take_service() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::move(service_);
}

std::string ModelSlot::state(std::string* detail) const {
  std::shared_ptr<ModelService> service;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (failed_) {
      if (detail) *detail = error_;
      return "failed";
    }
    service = service_;
  }
  if (!service) return "starting";
  EngineStats stats = service->engine->stats();
  if (!stats.healthy) {
    if (detail) *detail = stats.last_error;
    return "unhealthy";
  }
  return "ready";
}

ModelSlot* ModelRegistry::add(std::string name, std::string path, EngineOptions options) {
  slots_.push_back(std::make_unique<ModelSlot>(std::move(name), std::move(path), std::move(options)));
  return slots_.back().get();
}

ModelSlot* ModelRegistry::find(const std::string& name) const {
  for (const auto& s : slots_) {
    if (s->name() == name) return s.get();
  }
  return nullptr;
}

std::string ModelRegistry::names() const {
  std::string out;
  for (const auto& s : slots_) {
    if (!out.empty()) out += ", ";
    out += s->name();
  }
  return out;
}

}  // namespace tandem::server
