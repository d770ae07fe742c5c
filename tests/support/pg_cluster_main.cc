// ta_test_pg_cluster start FILE | stop FILE: the CTest fixture around the PostgreSQL tests
// (tests/support/CMakeLists.txt). `start` leaves a throwaway cluster running and writes its
// DSN (line 1) and directory (line 2) to FILE; `stop` stops it and removes both. Exit 0 on
// success; `start` fails loudly when PostgreSQL is not installed.
#include <fstream>
#include <iostream>
#include <string>

#include "tests/support/pg_cluster.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: ta_test_pg_cluster start|stop FILE\n";
    return 2;
  }
  const std::string command = argv[1], file = argv[2];
  if (command == "stop") {
    std::ifstream in(file);
    std::string dsn, dir;
    std::getline(in, dsn);
    std::getline(in, dir);
    ta::testing::PgCluster::Remove(dir);
    std::remove(file.c_str());
    return 0;
  }
  if (command != "start") return 2;
  absl::StatusOr<std::unique_ptr<ta::testing::PgCluster>> cluster =
      ta::testing::PgCluster::Start(/*watchdog=*/false);
  if (!cluster.ok()) {
    std::cerr << "ta_test_pg_cluster: " << cluster.status() << "\n";
    return 1;
  }
  std::ofstream out(file, std::ios::trunc);
  out << (*cluster)->dsn() << "\n" << (*cluster)->dir() << "\n";
  if (!out.flush()) {
    std::cerr << "ta_test_pg_cluster: cannot write " << file << "\n";
    return 1;  // the cluster is removed as `cluster` goes
  }
  (*cluster)->Detach();
  std::cout << "PostgreSQL test cluster: " << (*cluster)->dir() << "\n";
  return 0;
}
