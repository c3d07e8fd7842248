// tandem_test_server: `tandem serve` with the echo test engine (tests only).
#include "server/server_app.h"
#include "server_testing/echo_service.h"

int main(int argc, char** argv) {
  return tandem::server::serve_main(argc, argv, tandem::testing::make_echo_service, "tandem_test_server");
}
