#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace tandem::server {

std::string ApiError::body() const {
  nlohmann::json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  e["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
  return nlohmann::json({{"error", e}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiError bad_request(std::string message, std::string param) {
  ApiError e;
  e.http_status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

ApiError unsupported_param(const std::string& param, const std::string& why) {
  ApiError e = bad_request("parameter '" + param + "' is not supported by this server" +
                               (why.empty() ? std::string() : " (" + why + ")"),
                           param);
  e.code = "unsupported_parameter";
  return e;
}

ApiError api_error_from_status(const Status& status, const std::string& param) {
  ApiError e;
  e.message = status.message();
  e.param = param;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
      e.http_status = 400;
      break;
    case StatusCode::kUnimplemented:
      e.http_status = 400;
      e.code = "unsupported";
      break;
    case StatusCode::kNotFound:
      e.http_status = 404;
      e.code = "model_not_found";
      break;
    case StatusCode::kResourceExhausted:
      e.http_status = 429;
      e.type = "rate_limit_error";
      e.code = "queue_full";
      e.retry_after_s = 1;
      break;
    case StatusCode::kUnavailable:
      e.http_status = 503;
      e.type = "service_unavailable";
      break;
    case StatusCode::kDeadlineExceeded:
      e.http_status = 504;
      e.type = "timeout";
      break;
    default:
      e.http_status = 500;
      e.type = "internal_error";
      break;
  }
  return e;
}

}  // namespace tandem::server
