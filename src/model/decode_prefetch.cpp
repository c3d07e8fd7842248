#include "model/decode_prefetch.h"

#include <cstdlib>
#include <sstream>

namespace tandem {
namespace {

constexpr const char* kOpNames[kNumDecodeOps] = {"qkv", "attn", "o", "gu", "down"};

bool op_named(const std::string& name, DecodeOp* op) {
  for (int i = 0; i < kNumDecodeOps; ++i) {
    if (name == kOpNames[i]) {
      *op = static_cast<DecodeOp>(i);
      return true;
    }
  }
  return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// A fraction in [0, 1], the whole string.
bool parse_fraction(const std::string& s, float* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !(d >= 0.0 && d <= 1.0)) return false;
  *v = static_cast<float>(d);
  return true;
}

// Whether `target` is a GEMV after `carrier` (qkv after any other op is the
// next layer's).
bool comes_after(DecodeOp carrier, DecodeOp target) {
  if (target == DecodeOp::kAttn || target == carrier) return false;
  return target == DecodeOp::kQkv || static_cast<int>(target) > static_cast<int>(carrier);
}

}  // namespace

bool DecodePrefetchPlan::empty() const {
  for (const auto& v : by_carrier) {
    if (!v.empty()) return false;
  }
  return true;
}

std::string DecodePrefetchPlan::to_string() const {
  std::ostringstream out;
  bool first_carrier = true;
  for (int c = 0; c < kNumDecodeOps; ++c) {
    if (by_carrier[c].empty()) continue;
    out << (first_carrier ? "" : "/") << kOpNames[c] << ":";
    first_carrier = false;
    bool first = true;
    for (const DecodePrefetch& p : by_carrier[c]) {
      out << (first ? "" : ",") << kOpNames[static_cast<int>(p.target)] << "=" << p.from << "-" << p.to;
      first = false;
    }
  }
  return first_carrier ? "none" : out.str();
}

StatusOr<DecodePrefetchPlan> parse_decode_prefetch(const std::string& text) {
  DecodePrefetchPlan plan;
  if (text.empty() || text == "none") return plan;
  auto bad = [&](const std::string& part, const std::string& why) {
    return invalid_argument("decode prefetch plan \"" + text + "\": \"" + part + "\": " + why);
  };
  for (const std::string& group : split(text, '/')) {
    const size_t colon = group.find(':');
    if (colon == std::string::npos) return bad(group, "expected carrier:target=from-to,...");
    DecodeOp carrier;
    if (!op_named(group.substr(0, colon), &carrier))
      return bad(group, "unknown carrier \"" + group.substr(0, colon) + "\" (qkv, attn, o, gu, down)");
    if (!plan.by_carrier[static_cast<int>(carrier)].empty()) return bad(group, "carrier named twice");
    for (const std::string& item : split(group.substr(colon + 1), ',')) {
      const size_t eq = item.find('=');
      DecodePrefetch p;
      if (!op_named(item.substr(0, eq), &p.target))
        return bad(item, "unknown target \"" + item.substr(0, eq) + "\" (qkv, o, gu, down)");
      if (!comes_after(carrier, p.target)) return bad(item, "the target must be a later GEMV than the carrier");
      if (eq != std::string::npos) {
        const std::string range = item.substr(eq + 1);
        const size_t dash = range.find('-');
        if (dash == std::string::npos || !parse_fraction(range.substr(0, dash), &p.from) ||
            !parse_fraction(range.substr(dash + 1), &p.to) || p.from >= p.to)
          return bad(item, "expected a range from-to with 0 <= from < to <= 1");
      }
      plan.by_carrier[static_cast<int>(carrier)].push_back(p);
    }
  }
  return plan;
}

}  // namespace tandem
