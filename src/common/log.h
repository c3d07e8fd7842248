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
bool log_json();
// One line with extra fields: in JSON mode `fields_json` (a JSON object) gets
// ts/level/msg added; in text mode the line is `message` as given.
void log_line_fields(LogLevel level, const std::string& message, const std::string& fields_json);

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
