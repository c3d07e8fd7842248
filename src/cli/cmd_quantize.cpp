// tandem quantize --method awq|rtn --bits 4 --group-size 128 [--calib FILE] IN_DIR OUT_DIR
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "quant/quantize_model.h"

namespace tandem::cli {

int run_quantize(int argc, char** argv) {
  CLI::App app{"Write an AutoAWQ GEMM (4-bit) checkpoint from an fp16/bf16/fp32 one", "tandem quantize"};
  std::string method = "awq", in_dir, out_dir;
  quant::QuantizeOptions o;
  app.add_option("--method", method, "awq (activation-aware scales + clipping) or rtn (round to nearest)")
      ->check(CLI::IsMember({"awq", "rtn"}));
  app.add_option("--bits", o.bits, "bits per weight (only 4)");
  app.add_option("--group-size", o.group_size, "input channels per quantization group");
  app.add_option("--calib", o.calib_file, "calibration text (UTF-8), required for awq");
  app.add_option("--calib-tokens", o.calib_max_tokens, "calibration tokens to use");
  app.add_option("--calib-seq-len", o.calib_seq_len, "tokens per calibration sequence");
  app.add_option("IN_DIR", in_dir, "checkpoint folder to quantize")->required();
  app.add_option("OUT_DIR", out_dir, "output folder")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.method = method == "awq" ? quant::QuantizeMethod::kAwq : quant::QuantizeMethod::kRtn;
  auto report = quant::quantize_model(in_dir, out_dir, o);
  if (!report.ok()) {
    std::fprintf(stderr, "tandem quantize: %s\n", report.status().message().c_str());
    return 1;
  }
  for (const auto& s : report->scales) {
    std::printf("%-48s alpha %.2f  output MSE rtn %.3e -> awq %.3e\n", s.layers.c_str(), s.alpha, s.error_rtn,
                s.error_awq);
  }
  std::printf("quantized %d linear layers (%s, group size %d%s) into %s\n", report->num_linears, method.c_str(),
              o.group_size,
              report->calib_tokens ? (", " + std::to_string(report->calib_tokens) + " calibration tokens").c_str()
                                   : "",
              out_dir.c_str());
  return 0;
}

}  // namespace tandem::cli
