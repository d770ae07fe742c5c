// Catch2 main of reliability_tests, with --rounds and --seed for long runs (flags.h).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tests/reliability/flags.h"

int main(int argc, char** argv) {
  Catch::Session session;
  using Catch::clara::Opt;
  auto cli = session.cli() |
             Opt(ta::testing::g_crash_rounds, "rounds")["--rounds"](
                 "kill/restart rounds of the crash-under-load test (default 10)") |
             Opt(ta::testing::g_seed, "seed")["--seed"]("workload seed (default: random)");
  session.cli(cli);
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  return session.run();
}
