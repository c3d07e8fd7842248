// `tandem tokenize` and `tandem detokenize`: stdin -> stdout filters over a
// tokenizer folder or tokenizer.json (used by tests and for debugging prompts).
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace tandem::cli {
namespace {

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  CLI::App app{"Encode all of stdin (UTF-8; invalid bytes become U+FFFD) and print the ids "
               "on one line, space-separated"};
  std::string path;
  bool add_special = false;
  app.add_option("--tokenizer", path, "folder with tokenizer.json (or tokenizer.model), or the file")
      ->required();
  app.add_flag("--add-special-tokens", add_special, "add BOS/EOS as the post-processor says");
  CLI11_PARSE(app, argc, argv);
  auto tok = Tokenizer::load(path);
  if (!tok.ok()) {
    std::fprintf(stderr, "tandem tokenize: %s\n", tok.status().message().c_str());
    return 1;
  }
  const std::vector<int32_t> ids = (*tok)->encode(read_stdin(), add_special);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

int run_detokenize(int argc, char** argv) {
  CLI::App app{"Decode whitespace-separated ids from stdin and print the text (no newline added)"};
  std::string path;
  bool skip_special = false;
  app.add_option("--tokenizer", path, "folder with tokenizer.json (or tokenizer.model), or the file")
      ->required();
  app.add_flag("--skip-special-tokens", skip_special, "drop special tokens from the text");
  CLI11_PARSE(app, argc, argv);
  auto tok = Tokenizer::load(path);
  if (!tok.ok()) {
    std::fprintf(stderr, "tandem detokenize: %s\n", tok.status().message().c_str());
    return 1;
  }
  const std::string input = read_stdin();
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < input.size()) {
    if (std::isspace(static_cast<unsigned char>(input[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < input.size() && !std::isspace(static_cast<unsigned char>(input[j]))) ++j;
    const std::string word = input.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(word.c_str(), &end, 10);
    if (*end != '\0' || errno || v < 0 || v >= (*tok)->vocab_size()) {
      std::fprintf(stderr, "tandem detokenize: '%s' is not a token id (vocabulary size %d)\n",
                   word.c_str(), (*tok)->vocab_size());
      return 1;
    }
    ids.push_back(static_cast<int32_t>(v));
    i = j;
  }
  const std::string text = (*tok)->decode(ids, skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace tandem::cli
