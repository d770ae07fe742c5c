// Command-line knobs of replica_tests (parsed by main.cc). The defaults are the CI run;
// `--long` raises each to its long form (scripts/test.sh --long).
#ifndef TA_TESTS_REPLICAS_FLAGS_H_
#define TA_TESTS_REPLICAS_FLAGS_H_

#include <string>

namespace ta::testing {

// Rounds of the 50-concurrent-refreshes race, per mode (grace off / on). CI 20, long 200.
inline int g_race_rounds = 20;
// Failover rounds (SIGKILL the primary, promote the standby, rebuild). CI 2, long 25.
inline int g_failover_rounds = 2;
// Revocations whose propagation to the two other replicas is timed. CI 40, long 500.
inline int g_samples = 40;
// Sessions the mass-logout test issues and then revokes in one burst, and how many of them
// each subject holds (one RevokeSubject kills them all). CI 1,000 of 1 per subject; long
// 1,000,000 of 100 per subject (10,000 subjects).
inline int g_mass_sessions = 1000;
inline int g_mass_sessions_per_subject = 1;
// Rounds of the four revocation widths timed in every verifier consumer (sidecar, Python,
// Node: verifier_consumers_test.cc). CI 6 (24 revocations), long 25.
inline int g_consumer_rounds = 6;
// Where the propagation test appends its numbers ("key value" lines) for scripts/bench.sh.
inline std::string g_stats_file;
// Set by --long (the values above are raised in main.cc unless given explicitly).
inline bool g_long = false;

}  // namespace ta::testing

#endif  // TA_TESTS_REPLICAS_FLAGS_H_
