#include "tests/support/pg_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "storage/postgres/sql_session.h"

namespace ta::testing {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin";
constexpr char kClusterFileEnv[] = "TA_TEST_PG_CLUSTER_FILE";

// Runs a shell command (our own paths only, no caller data); its output goes to `log`.
absl::Status Shell(const std::string& command, const std::string& log) {
  const std::string full = absl::StrCat("(", command, ") >>", log, " 2>&1");
  int rc = std::system(full.c_str());
  if (rc == 0) return absl::OkStatus();
  std::ifstream in(log);
  std::stringstream tail;
  tail << in.rdbuf();
  return absl::UnavailableError(absl::StrCat("`", command, "` failed (", rc, "): ", tail.str()));
}

// Runs a PostgreSQL binary as the postgres user when we are root (initdb and postgres
// refuse root), as ourselves otherwise.
std::string AsOwner(const std::string& binary_and_args) {
  const std::string command = absl::StrCat(kBin, "/", binary_and_args);
  return geteuid() == 0 ? absl::StrCat("runuser -u postgres -- ", command) : command;
}

absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  if (port < 0) return absl::InternalError("no free port");
  return port;
}

// Under /tmp whatever TMPDIR says: the postgres user must be able to reach it, and the socket
// path inside it must stay within the 107 bytes a Unix socket address allows.
absl::StatusOr<std::string> MakeOwnedTempDir() {
  std::string tmpl = "/tmp/ta-pg-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "no `postgres` user: install postgresql-15 (bash scripts/setup.sh)");
    }
    if (chown(tmpl.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError("chown of the cluster dir failed");
    }
  }
  chmod(tmpl.c_str(), 0700);
  return tmpl;
}

std::string StopCommand(const std::string& dir) {
  return AsOwner(absl::StrCat("pg_ctl -D ", dir, "/data -m immediate -w stop"));
}

std::string StartCommand(const std::string& dir) {
  return AsOwner(absl::StrCat("pg_ctl -D ", dir, "/data -l ", dir, "/server.log -w -t 60 start"));
}

// Where the server listens: only on its own socket, in its own directory.
std::string ListenConf(const std::string& dir, int port) {
  return absl::StrCat("listen_addresses = ''\nunix_socket_directories = '", dir, "'\nport = ", port,
                      "\n");
}

absl::Status AppendConf(const std::string& dir, const std::string& lines) {
  std::ofstream conf(absl::StrCat(dir, "/data/postgresql.conf"), std::ios::app);
  conf << lines;
  conf.close();
  if (!conf) return absl::InternalError(absl::StrCat("cannot append to ", dir, "/data/postgresql.conf"));
  return absl::OkStatus();
}

// The postmaster's pid (first line of postmaster.pid), or -1.
pid_t PostmasterPid(const std::string& dir) {
  std::ifstream in(absl::StrCat(dir, "/data/postmaster.pid"));
  long pid = -1;
  if (!(in >> pid) || pid <= 1) return -1;
  return static_cast<pid_t>(pid);
}

// The postmaster and every process whose parent it is (backends, walsender, ...).
std::vector<pid_t> ServerProcesses(pid_t postmaster) {
  std::vector<pid_t> out = {postmaster};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t paren = line.rfind(')');  // comm may hold spaces; fields follow it
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    char state;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == postmaster) out.push_back(std::stoi(name));
  }
  return out;
}

bool Alive(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Start(bool watchdog,
                                                            const std::string& extra_conf) {
  if (access(absl::StrCat(kBin, "/initdb").c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "PostgreSQL 15 is not installed (no ", kBin, "/initdb): run bash scripts/setup.sh"));
  }
  auto cluster = std::unique_ptr<PgCluster>(new PgCluster());
  absl::StatusOr<std::string> dir = MakeOwnedTempDir();
  if (!dir.ok()) return dir.status();
  cluster->dir_ = *dir;
  if (watchdog) cluster->StartWatchdog();
  const std::string log = absl::StrCat(*dir, "/setup.log");
  absl::Status s = Shell(AsOwner(absl::StrCat("initdb -D ", *dir, "/data -U postgres -A trust ",
                                              "-E UTF8 --no-locale --no-sync")),
                         log);
  if (!s.ok()) return s;
  absl::StatusOr<int> port = FreePort();
  if (!port.ok()) return port.status();
  s = AppendConf(*dir, absl::StrCat(ListenConf(*dir, *port),
                                     "fsync = off\nfull_page_writes = off\n"
                                     "max_connections = 300\n",
                                     extra_conf, "\n"));
  if (!s.ok()) return s;
  s = Shell(StartCommand(*dir), log);
  if (!s.ok()) return s;
  cluster->port_ = *port;
  cluster->dsn_ = absl::StrCat("host=", *dir, " port=", *port, " user=postgres dbname=postgres");
  return cluster;
}

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::StartStandby(const PgCluster& primary,
                                                                   bool watchdog) {
  auto cluster = std::unique_ptr<PgCluster>(new PgCluster());
  absl::StatusOr<std::string> dir = MakeOwnedTempDir();
  if (!dir.ok()) return dir.status();
  cluster->dir_ = *dir;
  if (watchdog) cluster->StartWatchdog();
  absl::StatusOr<int> port = FreePort();
  if (!port.ok()) return port.status();
  cluster->port_ = *port;
  cluster->dsn_ = absl::StrCat("host=", *dir, " port=", *port, " user=postgres dbname=postgres");
  absl::Status s = cluster->BaseBackupFrom(primary);
  if (!s.ok()) return s;
  return cluster;
}

// pg_basebackup -R of `primary` into <dir_>/data, then this cluster's own socket and port
// (later lines of postgresql.conf win over the primary's copied ones), then start.
absl::Status PgCluster::BaseBackupFrom(const PgCluster& primary) {
  const std::string log = absl::StrCat(dir_, "/setup.log");
  absl::Status s = Shell(AsOwner(absl::StrCat("pg_basebackup -D ", dir_, "/data -R -X stream ",
                                              "-c fast --no-sync -h ", primary.dir(), " -p ",
                                              primary.port(), " -U postgres")),
                         log);
  if (!s.ok()) return s;
  s = AppendConf(dir_, ListenConf(dir_, port_));
  if (!s.ok()) return s;
  return Shell(StartCommand(dir_), log);
}

absl::Status PgCluster::RebuildAsStandbyOf(const PgCluster& primary) {
  std::system(absl::StrCat(StopCommand(dir_), " >/dev/null 2>&1").c_str());
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(dir_, "/data"), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", dir_, "/data"));
  return BaseBackupFrom(primary);
}

absl::Status PgCluster::Signal(int signal) {
  const pid_t postmaster = PostmasterPid(dir_);
  if (postmaster < 0) return absl::FailedPreconditionError(absl::StrCat("no postmaster in ", dir_));
  for (pid_t pid : ServerProcesses(postmaster)) kill(pid, signal);
  return absl::OkStatus();
}

absl::Status PgCluster::KillHard() {
  const pid_t postmaster = PostmasterPid(dir_);
  if (postmaster < 0) return absl::FailedPreconditionError(absl::StrCat("no postmaster in ", dir_));
  const std::vector<pid_t> pids = ServerProcesses(postmaster);
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (int i = 0; i < 500; ++i) {  // up to 5 s
    bool any = false;
    for (pid_t pid : pids) any = any || Alive(pid);
    if (!any) return absl::OkStatus();
    usleep(10'000);
  }
  return absl::DeadlineExceededError(absl::StrCat("PostgreSQL in ", dir_, " survived SIGKILL"));
}

absl::Status PgCluster::Pause() { return Signal(SIGSTOP); }
absl::Status PgCluster::Resume() { return Signal(SIGCONT); }

absl::Status PgCluster::Promote() {
  return Shell(AsOwner(absl::StrCat("pg_ctl -D ", dir_, "/data -w -t 60 promote")),
               absl::StrCat(dir_, "/setup.log"));
}

// A child that waits for this process to go (its pipe's write end closes with us, however we
// end), then stops the server and removes the directory.
void PgCluster::StartWatchdog() {
  int fds[2];
  // Close-on-exec, or the servers pg_ctl starts would inherit the write end and keep it open.
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  // SIGCONT first: a server a test left paused (SIGSTOP) would never act on the stop.
  const std::string pid_file = absl::StrCat(dir_, "/data/postmaster.pid");
  const std::string cleanup = absl::StrCat(
      "if [ -f ", pid_file, " ]; then pm=$(head -1 ", pid_file, "); kill -CONT $pm 2>/dev/null; pkill -CONT -P $pm 2>/dev/null; fi; ",
      StopCommand(dir_), " >/dev/null 2>&1; rm -rf ", dir_);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // a Ctrl-C to the tests must not stop the cleanup
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);  // not the test framework's handler
    dup2(fds[0], STDIN_FILENO);
    close_range(3, ~0U, 0);
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0) {
    }
    execl("/bin/sh", "sh", "-c", cleanup.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  if (pid < 0) {
    close(fds[1]);
    return;
  }
  watchdog_pipe_ = fds[1];
  watchdog_pid_ = pid;
}

PgCluster::~PgCluster() {
  if (detached_) return;
  if (watchdog_pid_ > 0) {
    close(watchdog_pipe_);
    waitpid(watchdog_pid_, nullptr, 0);
    return;
  }
  Remove(dir_);
}

void PgCluster::Remove(const std::string& dir) {
  if (dir.empty()) return;
  // A server a test left paused (SIGSTOP) would never act on the stop.
  if (const pid_t postmaster = PostmasterPid(dir); postmaster > 0) {
    for (pid_t pid : ServerProcesses(postmaster)) kill(pid, SIGCONT);
  }
  std::system(absl::StrCat(StopCommand(dir), " >/dev/null 2>&1").c_str());
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

absl::Status PgCluster::Kill() {
  return Shell(StopCommand(dir_), absl::StrCat(dir_, "/setup.log"));
}

absl::Status PgCluster::Restart() { return Shell(StartCommand(dir_), absl::StrCat(dir_, "/setup.log")); }

absl::StatusOr<std::string> SharedTestClusterDsn() {
  static std::mutex mu;
  static std::unique_ptr<PgCluster>* own = nullptr;  // lives until exit: the watchdog removes it
  std::lock_guard<std::mutex> lock(mu);
  if (const char* file = std::getenv(kClusterFileEnv); file != nullptr && *file != '\0') {
    std::ifstream in(file);
    std::string dsn;
    if (!std::getline(in, dsn) || dsn.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          kClusterFileEnv, "=", file, " names no cluster: did the pg_cluster fixture fail?"));
    }
    return dsn;
  }
  if (own == nullptr) {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start(/*watchdog=*/true);
    if (!started.ok()) return started.status();
    own = new std::unique_ptr<PgCluster>(*std::move(started));
  }
  return (*own)->dsn();
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Create() {
  absl::StatusOr<std::string> cluster = SharedTestClusterDsn();
  if (!cluster.ok()) return cluster.status();
  return CreateIn(*cluster);
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::CreateIn(const std::string& cluster) {
  static std::atomic<int> counter{0};
  auto db = std::unique_ptr<TestDatabase>(new TestDatabase());
  db->cluster_dsn_ = cluster;
  db->name_ = absl::StrCat("ta_test_", getpid(), "_", counter++);
  absl::StatusOr<std::unique_ptr<storage::SqlSession>> admin = storage::SqlSession::Connect(cluster);
  if (!admin.ok()) return admin.status();
  // Our own generated name: safe in the text.
  // FILE_COPY: a third faster than PostgreSQL 15's default (WAL_LOG) on a small template.
  absl::Status s =
      (*admin)->Execute(absl::StrCat("CREATE DATABASE ", db->name_, " STRATEGY FILE_COPY"));
  if (!s.ok()) return s;
  db->dsn_ = absl::StrCat(cluster, " dbname=", db->name_);
  return db;
}

TestDatabase::~TestDatabase() {
  absl::StatusOr<std::unique_ptr<storage::SqlSession>> admin =
      storage::SqlSession::Connect(cluster_dsn_);
  if (admin.ok()) {
    (*admin)->Execute(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)")).IgnoreError();
  }
}

}  // namespace ta::testing
