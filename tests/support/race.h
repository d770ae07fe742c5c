// Race(a, b): runs `a` on a second thread and `b` on this one, released together by a latch,
// and returns when both are done. Only `b` may use Catch2 assertions (they are not
// thread-safe in Catch2 v2); `a` records what it saw for the test to check afterwards.
#ifndef TA_TESTS_SUPPORT_RACE_H_
#define TA_TESTS_SUPPORT_RACE_H_

#include <functional>
#include <latch>
#include <thread>

namespace ta::testing {

inline void Race(const std::function<void()>& a, const std::function<void()>& b) {
  std::latch go(2);
  std::thread first([&] {
    go.arrive_and_wait();
    a();
  });
  go.arrive_and_wait();
  b();
  first.join();
}

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_RACE_H_
