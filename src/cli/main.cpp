// tandem: one binary, subcommands. Dispatches on argv[1]; each subcommand parses
// its own flags (CLI11) in its own file.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace {

struct Subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const Subcommand kSubcommands[] = {
    {"version", tandem::cli::run_version, "print the version and compiled backends"},
    {"generate", tandem::cli::run_generate, "generate a continuation of one prompt"},
    {"plan", tandem::cli::run_plan, "plan device memory for a set of models under one budget"},
    {"tokenize", tandem::cli::run_tokenize, "stdin text -> token ids"},
    {"detokenize", tandem::cli::run_detokenize, "stdin token ids -> text"},
    {"quantize", tandem::cli::run_quantize, "write a 4-bit AWQ checkpoint (awq or rtn)"},
    {"eval", tandem::cli::run_eval, "evaluate a model (ppl: perplexity)"},
    {"bench", tandem::cli::run_bench, "serving benchmark against an OpenAI-compatible server"},
    {"chat-template", tandem::cli::run_chat_template, "render a chat template over JSON messages"},
    {"serve", tandem::cli::run_serve, "serve models behind one OpenAI-compatible port"},
    {"synth", tandem::cli::run_synth, "write a random-weight checkpoint of a config's exact shapes"},
};

void print_usage() {
  std::printf("usage: tandem <command> [options]\n\ncommands:\n");
  for (const auto& s : kSubcommands) std::printf("  %-14s %s\n", s.name, s.help);
  std::printf("\n`tandem <command> --help` shows a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) return tandem::cli::run_version(argc - 1, argv + 1);
  for (const auto& s : kSubcommands) {
    if (std::string(argv[1]) == s.name) return s.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "tandem: unknown command '%s' (see tandem --help)\n", argv[1]);
  return 2;
}
