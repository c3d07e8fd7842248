// Which op of a decode step prefetches which later layer's weights
// (Backend::prefetch_linear), and the text form that names it.
//
// A layer's ops run in the order qkv, attn, o, gu (gate|up), down; an op
// (the carrier) may pull a later op's weights in, in the fraction [from, to)
// of that GEMV's rounds. "qkv" as the target of o, gu or down is the next
// layer's. Text: carriers separated by '/', each `carrier:target=from-to,...`,
// e.g. "attn:o=0-1,gu=0-0.25/o:gu=0.25-0.5"; a bare target means 0-1; "none"
// or "" is the empty plan.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "common/status.h"

namespace tandem {

enum class DecodeOp : int { kQkv = 0, kAttn, kO, kGateUp, kDown };
inline constexpr int kNumDecodeOps = 5;

struct DecodePrefetch {
  DecodeOp target = DecodeOp::kO;
  float from = 0.f, to = 1.f;
};

struct DecodePrefetchPlan {
  // By carrier (DecodeOp as index): what it prefetches, in issue order.
  std::array<std::vector<DecodePrefetch>, kNumDecodeOps> by_carrier;
  bool empty() const;
  std::string to_string() const;
};

// kInvalidArgument naming the part of `text` that is wrong.
StatusOr<DecodePrefetchPlan> parse_decode_prefetch(const std::string& text);

// The plan Model uses unless TANDEM_L2_PREFETCH names another
// (docs/cuda-decode.md, session 11).
inline constexpr const char* kDefaultDecodePrefetch = "none";

}  // namespace tandem
