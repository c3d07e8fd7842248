// CHECK macros for broken invariants (programming errors), never for user input.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace tandem::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& msg);
}

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) ::tandem::detail::check_failed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define CHECK_MSG(cond, msg)                                                      \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::ostringstream tandem_check_os_;                                        \
      tandem_check_os_ << msg;                                                    \
      ::tandem::detail::check_failed(__FILE__, __LINE__, #cond, tandem_check_os_.str()); \
    }                                                                             \
  } while (0)

#define CHECK_EQ(a, b) CHECK_MSG((a) == (b), (a) << " vs " << (b))
#define CHECK_NE(a, b) CHECK_MSG((a) != (b), (a) << " vs " << (b))
#define CHECK_LT(a, b) CHECK_MSG((a) < (b), (a) << " vs " << (b))
#define CHECK_LE(a, b) CHECK_MSG((a) <= (b), (a) << " vs " << (b))
#define CHECK_GT(a, b) CHECK_MSG((a) > (b), (a) << " vs " << (b))
#define CHECK_GE(a, b) CHECK_MSG((a) >= (b), (a) << " vs " << (b))
