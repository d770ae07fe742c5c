// Command-line knobs of reliability_tests (parsed by main.cc), for long runs:
//   reliability_tests "[crash]" --rounds 200 --seed 42
#ifndef TA_TESTS_RELIABILITY_FLAGS_H_
#define TA_TESTS_RELIABILITY_FLAGS_H_

#include <cstdint>

namespace ta::testing {

// Kill/restart rounds of the crash-under-load test. CI default 10.
inline int g_crash_rounds = 10;
// Seed of the workload and kill times; 0 = pick one (printed, so a run can be repeated).
inline uint64_t g_seed = 0;

}  // namespace ta::testing

#endif  // TA_TESTS_RELIABILITY_FLAGS_H_
