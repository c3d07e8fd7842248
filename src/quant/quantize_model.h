// `tandem quantize`: an fp16/bf16/fp32 checkpoint folder in, an AutoAWQ "GEMM"
// checkpoint folder out (FORMATS.md), by round-to-nearest or by AWQ.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tandem::quant {

enum class QuantizeMethod { kRtn, kAwq };

struct QuantizeOptions {
  QuantizeMethod method = QuantizeMethod::kAwq;
  int bits = 4;                 // only 4 is supported
  int group_size = 128;
  std::string calib_file;       // UTF-8 text (AWQ only; required for it)
  int calib_seq_len = 512;      // tokens per calibration sequence
  int calib_max_tokens = 4096;  // calibration tokens in all
  int search_grid = 20;         // AWQ scale grid (alpha = 0, 1/20, ...) and clip grid
};

// What the AWQ search chose for one group of layers sharing an input.
struct ScaleReport {
  std::string layers;           // "model.layers.0.self_attn.{q,k,v}_proj"
  float alpha = 0;
  double error_rtn = 0;         // output MSE with plain RTN
  double error_awq = 0;         // output MSE with the chosen scales
};

struct QuantizeReport {
  int num_linears = 0;
  int calib_tokens = 0;
  std::vector<ScaleReport> scales;
};

StatusOr<QuantizeReport> quantize_model(const std::string& in_dir, const std::string& out_dir,
                                        const QuantizeOptions& options);

}  // namespace tandem::quant
