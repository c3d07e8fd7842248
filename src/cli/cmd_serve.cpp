#include "cli/commands.h"
#include "server/model_service.h"
#include "server/server_app.h"

namespace tandem::cli {

int run_serve(int argc, char** argv) {
  return server::serve_main(argc, argv, server::ModelServiceFactoryMaker(server::make_model_service_factory),
                            "tandem serve");
}

}  // namespace tandem::cli
