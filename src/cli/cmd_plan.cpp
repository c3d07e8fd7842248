// `tandem plan`: the memory plan for a set of models under one budget.
// Exit codes: 0 the set fits; 1 it does not fit (the plan says by how much and
// what would make it fit); 2 bad arguments or unreadable model configs.
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/registry.h"
#include "cli/commands.h"
#include "memory/byte_size.h"
#include "memory/plan_format.h"
#include "memory/planner.h"
#include "memory/weights.h"

namespace tandem::cli {
namespace {

constexpr int kExitFits = 0;
constexpr int kExitDoesNotFit = 1;
constexpr int kExitBadInput = 2;

int fail(const std::string& message) {
  std::fprintf(stderr, "tandem plan: %s\n", message.c_str());
  return kExitBadInput;
}

// "NAME=VALUE" -> {NAME, VALUE}; false when malformed.
bool split_pair(const std::string& s, std::string* name, std::string* value) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) return false;
  *name = s.substr(0, eq);
  *value = s.substr(eq + 1);
  return true;
}

}  // namespace

int run_plan(int argc, char** argv) {
  CLI::App app{"Plan device memory for a set of models under one budget (see docs/memory.md)", "tandem plan"};
  std::string budget_text, device = "cuda", overheads_path, measure_out;
  std::vector<std::string> model_specs, weight_specs;
  int64_t max_model_len = 0;
  memory::PlanOptions options;
  bool json = false, measure = false;
  int measure_device = 0;
  app.add_option("--gpu-budget", budget_text,
                 "budget: bytes or KB/MB/GB (10^n) or KiB/MiB/GiB (2^n), e.g. 96GB, 80GiB; on CPU it bounds host memory");
  app.add_option("--model", model_specs, "NAME=PATH, PATH a model folder or a config.json (repeatable)");
  app.add_option("--weight", weight_specs, "NAME=W: the model's share of the KV reserve and GPU steps (default 1)");
  app.add_option("--max-model-len", max_model_len, "longest sequence (default: each model's max_position_embeddings)");
  app.add_option("--max-num-seqs", options.max_num_seqs, "sequences per step")->capture_default_str();
  app.add_option("--max-num-batched-tokens", options.max_num_batched_tokens, "tokens per step")->capture_default_str();
  app.add_option("--page-size", options.page_size, "tokens per KV page")->capture_default_str();
  app.add_option("--kv-reserved-fraction", options.kv_reserved_fraction,
                 "part of the KV pool guaranteed to models by weight; the rest is shared")
      ->capture_default_str();
  app.add_option("--device", device, "cuda or cpu (cpu: fp32 workspace, no device overheads)")->capture_default_str();
  app.add_option("--overheads", overheads_path, "measured overheads JSON (from --measure-overheads)");
  app.add_flag("--json", json, "print the plan as one JSON object");
  app.add_flag("--measure-overheads", measure, "measure CUDA context, cuBLAS, stream and graph overheads on this GPU");
  app.add_option("--measure-device", measure_device, "GPU index for --measure-overheads")->capture_default_str();
  app.add_option("--measure-out", measure_out, "also write the measured JSON to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitBadInput;
  }

  if (measure) {
    StatusOr<std::string> measured = measure_cuda_overheads_json(measure_device);
    if (!measured.ok()) return fail(measured.status().message());
    std::printf("%s\n", measured->c_str());
    if (!measure_out.empty()) {
      std::ofstream out(measure_out);
      out << *measured << "\n";
      if (!out) return fail("cannot write " + measure_out);
    }
    return 0;
  }

  if (budget_text.empty()) return fail("--gpu-budget is required (e.g. --gpu-budget 96GB)");
  StatusOr<int64_t> budget = memory::parse_byte_size(budget_text);
  if (!budget.ok()) return fail("--gpu-budget: " + budget.status().message());
  options.budget_bytes = *budget;
  options.max_model_len = max_model_len;
  if (max_model_len < 0) return fail("--max-model-len must be positive");
  if (device == "cuda") {
    options.device = memory::PlanDevice::kCuda;
    options.overheads = memory::default_cuda_overheads();
  } else if (device == "cpu") {
    options.device = memory::PlanDevice::kCpu;
    options.overheads = memory::cpu_overheads();
    options.kv_dtype = DType::kF32;  // the CPU backend keeps activations and KV in fp32
  } else {
    return fail("--device must be cuda or cpu, got '" + device + "'");
  }
  if (!overheads_path.empty()) {
    if (options.device == memory::PlanDevice::kCpu) return fail("--overheads applies to --device cuda only");
    StatusOr<memory::Overheads> o = memory::load_overheads_json(overheads_path);
    if (!o.ok()) return fail(o.status().message());
    options.overheads = *o;
  }

  if (model_specs.empty()) return fail("give at least one --model NAME=PATH");
  std::map<std::string, double> weights;
  for (const std::string& spec : weight_specs) {
    std::string name, value;
    if (!split_pair(spec, &name, &value)) return fail("--weight '" + spec + "' is not NAME=W");
    try {
      size_t used = 0;
      const double w = std::stod(value, &used);
      if (used != value.size() || !(w > 0)) throw std::invalid_argument(value);
      weights[name] = w;
    } catch (const std::exception&) {
      return fail("--weight '" + spec + "': W must be a positive number");
    }
  }
  std::vector<memory::PlanModelInput> models;
  for (const std::string& spec : model_specs) {
    memory::PlanModelInput in;
    if (!split_pair(spec, &in.name, &in.path)) return fail("--model '" + spec + "' is not NAME=PATH");
    StatusOr<ModelConfig> config = memory::load_model_config(in.path);
    if (!config.ok()) return fail("model '" + in.name + "': " + config.status().message());
    in.config = *config;
    if (auto it = weights.find(in.name); it != weights.end()) {
      in.weight = it->second;
      weights.erase(it);
    }
    models.push_back(std::move(in));
  }
  if (!weights.empty()) return fail("--weight names model '" + weights.begin()->first + "', which no --model gives");

  StatusOr<memory::Plan> plan = memory::make_plan(models, options);
  if (!plan.ok()) return fail(plan.status().message());
  if (json) std::printf("%s\n", memory::plan_to_json(*plan).dump(2).c_str());
  else std::printf("%s", memory::plan_to_table(*plan).c_str());
  return plan->fits ? kExitFits : kExitDoesNotFit;
}

}  // namespace tandem::cli
