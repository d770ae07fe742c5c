// A fixed pool of threads for RPC work that blocks (a synced WAL write takes milliseconds):
// callback-API handlers must not block gRPC's own threads, and many concurrent writers let
// RocksDB's group commit share one fsync among them.
//
// Bounded: Schedule() refuses work once `max_queue` tasks wait, so overload turns into a
// quick RESOURCE_EXHAUSTED instead of unbounded memory. Stop() (or the destructor) runs every
// task already accepted, then joins. Thread-safe.
#ifndef TA_SERVER_RUNTIME_WORKER_POOL_H_
#define TA_SERVER_RUNTIME_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ta::runtime {

class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queue);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False (and `task` not run) when the queue is full or the pool is stopping.
  bool Schedule(std::function<void()> task);
  // Refuses new tasks, runs every accepted one, joins the threads. Idempotent; not from a
  // pool thread.
  void Stop();

 private:
  void Loop();

  const size_t max_queue_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ta::runtime

#endif  // TA_SERVER_RUNTIME_WORKER_POOL_H_
