#include <cstdio>

#include "backend/registry.h"
#include "cli/commands.h"

namespace tandem::cli {

int run_version(int argc, char** argv) {
  std::printf("tandem %s\nbackends:", TANDEM_VERSION);
  for (const auto& name : compiled_backends()) std::printf(" %s", name.c_str());
  std::printf("\n");
  return 0;
}

}  // namespace tandem::cli
