// tandem synth: a random-weight checkpoint of a published config's exact shapes.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "model/synth_config.h"

namespace tandem::cli {

int run_synth(int argc, char** argv) {
  CLI::App app{"Write a random-weight checkpoint with a config's exact tensor names, shapes and dtypes",
               "tandem synth"};
  SynthConfigOptions o;
  double shard_gb = 5.0;
  app.add_option("--config", o.config_path, "config.json (or a folder holding one)")->required();
  app.add_option("--out", o.out_dir, "output folder")->required();
  app.add_option("--quant", o.quant,
                 "config: as the config says; awq / gptq: 4-bit (adds quantization_config, fp16); "
                 "none: the config's own dtype, quantization dropped")
      ->check(CLI::IsMember({"config", "awq", "gptq", "none"}));
  app.add_option("--group-size", o.group_size, "int4 group size (default: the config's, else 128; gptq -1 = all)");
  app.add_flag("--desc-act", o.desc_act, "gptq: act-order (random g_idx)");
  app.add_option("--seed", o.seed, "random seed (same seed, same bytes)");
  app.add_option("--max-shard-gb", shard_gb, "largest shard in GB (HF default 5)")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "writer threads (default: all cores)")->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.max_shard_bytes = static_cast<uint64_t>(shard_gb * 1e9);
  auto r = synth_from_config(o);
  if (!r.ok()) {
    std::fprintf(stderr, "tandem synth: %s\n", r.status().message().c_str());
    return 1;
  }
  std::printf("{\"out\": \"%s\", \"tensors\": %lld, \"shards\": %d, \"bytes\": %lld, \"seconds\": %.3f, \"GB_per_s\": %.3f}\n",
              o.out_dir.c_str(), static_cast<long long>(r->num_tensors), r->num_shards,
              static_cast<long long>(r->total_bytes), r->seconds, r->total_bytes / 1e9 / std::max(r->seconds, 1e-9));
  return 0;
}

}  // namespace tandem::cli
