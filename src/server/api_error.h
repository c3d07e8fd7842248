// OpenAI-style API errors: an HTTP status plus the body
// {"error": {"message", "type", "param", "code"}}. Request parsing and the
// handlers return these instead of throwing.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "common/status.h"

namespace tandem::server {

struct ApiError {
  int http_status = 400;
  std::string type = "invalid_request_error";  // OpenAI's error "type"
  std::string message;
  std::string param;                           // the offending field; empty -> null
  std::string code;                            // machine-readable code; empty -> null
  int retry_after_s = 0;                       // > 0 adds a Retry-After header (429)

  std::string body() const;  // the JSON error body
};

ApiError bad_request(std::string message, std::string param = "");
ApiError unsupported_param(const std::string& param, const std::string& why = "");
ApiError api_error_from_status(const Status& status, const std::string& param = "");

// A value or an ApiError; parse functions return this.
template <typename T>
class ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}       // NOLINT: implicit by design
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  const ApiError& error() const { return std::get<ApiError>(v_); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

}  // namespace tandem::server
