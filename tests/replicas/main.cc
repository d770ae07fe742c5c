// Catch2 main of replica_tests, with the knobs of flags.h.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tests/replicas/flags.h"

int main(int argc, char** argv) {
  Catch::Session session;
  using Catch::clara::Opt;
  int race = -1, failover = -1, samples = -1, sessions = -1, per_subject = -1;
  int consumer_rounds = -1;
  auto cli = session.cli() |
             Opt(ta::testing::g_long)["--long"](
                 "long form: 200 race rounds, 25 failover rounds, "
                 "500 propagation samples, a 1,000,000-session mass logout") |
             Opt(race, "rounds")["--race_rounds"]("rounds of the concurrent-refresh race (20)") |
             Opt(failover, "rounds")["--failover_rounds"]("failover rounds (2)") |
             Opt(samples, "n")["--samples"]("revocations timed by the propagation test (40)") |
             Opt(sessions, "n")["--sessions"]("sessions the mass-logout test revokes (1000)") |
             Opt(per_subject, "n")["--sessions_per_subject"](
                 "sessions of each subject in the mass-logout test (1)") |
             Opt(consumer_rounds, "n")["--consumer_rounds"](
                 "rounds of the four widths timed in every verifier consumer (6)") |
             Opt(ta::testing::g_stats_file, "file")["--stats_file"](
                 "append the propagation numbers to this file (key value lines)");
  session.cli(cli);
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  if (ta::testing::g_long) {
    ta::testing::g_race_rounds = 200;
    ta::testing::g_failover_rounds = 25;
    ta::testing::g_samples = 500;
    ta::testing::g_mass_sessions = 1000000;
    ta::testing::g_mass_sessions_per_subject = 100;
    ta::testing::g_consumer_rounds = 25;
  }
  if (race > 0) ta::testing::g_race_rounds = race;
  if (failover > 0) ta::testing::g_failover_rounds = failover;
  if (samples > 0) ta::testing::g_samples = samples;
  if (sessions > 0) ta::testing::g_mass_sessions = sessions;
  if (per_subject > 0) ta::testing::g_mass_sessions_per_subject = per_subject;
  if (consumer_rounds > 0) ta::testing::g_consumer_rounds = consumer_rounds;
  return session.run();
}
