// Minimal leveled logging to stderr; one line per call, thread-safe.
// TANDEM_LOG(kInfo) << "loaded " << n << " tensors";
#pragma once

#include <sstream>
#include <string>

namespace tandem {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
// When on, each line is a JSON object {"ts","level","msg"} (server --log-format json).
void set_log_json(bool on);
void log_line(LogLevel level, const std::string& message);

class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { log_line(level_, os_.str()); }
  std::ostringstream& stream() { return os_; }

 private:
  LogLevel level_;
  std::ostringstream os_;
};

}  // namespace tandem

#define TANDEM_LOG(level)                                         \
  if (::tandem::LogLevel::level < ::tandem::log_level()) {        \
  } else                                                          \
    ::tandem::LogMessage(::tandem::LogLevel::level).stream()
