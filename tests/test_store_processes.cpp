// Crash safety and concurrency of the SQLite store, with real processes
// (tests/store_child.cpp): children killed with SIGKILL at random moments,
// and several children acting on the same cases at once.

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>

#include "store_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using namespace onestop;

namespace {

using test_support::company;
const fs::path definitions = fs::path(ONESTOP_TEST_DATA) / "store" / "investment.yaml";

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("onestop-{}-{}", name, ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A running child with its standard output on a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;
  std::string buffer;

  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    REQUIRE(::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out = fds[0];
  }
  ~Child() {
    if (out >= 0) ::close(out);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  // Reads what is available within `wait`; false at end of output.
  bool read_some(std::chrono::milliseconds wait) {
    pollfd p{out, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
    char chunk[4096];
    const ssize_t n = ::read(out, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  void read_all() {
    while (read_some(std::chrono::milliseconds(10000))) {
    }
  }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out_lines;
    std::istringstream in(buffer);
    for (std::string line; std::getline(in, line);) out_lines.push_back(line);
    return out_lines;
  }
};

std::unique_ptr<Engine> open_checker(const fs::path& db) {
  return test_support::engine_on(definitions, open_sqlite_store(db.string()),
                                 std::make_shared<ManualClock>(std::chrono::sys_days{std::chrono::year{2026} / 4 / 30} +
                                                               std::chrono::hours{1}));
}

bool is_input(EventKind k) {
  return k == EventKind::submitted || k == EventKind::acted || k == EventKind::handler_ran || k == EventKind::timer_fired;
}

// Each case verifies: hash chain intact, state equal to the replay of its
// history, one version per input (nothing half-applied).
template <class Ids>
void check_cases(Engine& engine, const Ids& ids) {
  for (CaseId id : ids) {
    const HistoryCheck check = engine.verify(id);
    INFO("case " << id << ": " << check.message);
    REQUIRE(check.ok);
    const auto history = engine.history(id);
    const auto inputs = static_cast<std::uint64_t>(std::count_if(history.begin(), history.end(), [](const Event& e) { return is_input(e.kind); }));
    REQUIRE(engine.get(id).version == inputs);
  }
}

void check_every_case(Engine& engine, Store& store) { check_cases(engine, store.case_ids()); }

}  // namespace

TEST_CASE("crash safety: a child killed with SIGKILL at random moments loses no acknowledged action") {
  const fs::path dir = fresh_dir("crash");
  const fs::path db = dir / "cases.db";
  std::mt19937 rng(20261125);
  std::map<CaseId, std::uint64_t> acknowledged;  // highest version acknowledged per case
  std::set<CaseId> known;                         // cases in the file after the last kill
  std::size_t acks = 0;
  const int kills = 60;
  for (int round = 0; round < kills; ++round) {
    Child child({ONESTOP_STORE_CHILD, "crash", db.string(), definitions.string(), std::to_string(rng())});
    // Once it is up, let it work for a random while: from before its first
    // commit to a few dozen commits.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (child.buffer.find("ready\n") == std::string::npos && std::chrono::steady_clock::now() < give_up) {
      REQUIRE(child.read_some(std::chrono::milliseconds(100)));  // false: it exited
    }
    REQUIRE(child.buffer.find("ready\n") != std::string::npos);
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 150'000);
    while (std::chrono::steady_clock::now() < until) {
      if (!child.read_some(std::chrono::milliseconds(1))) break;
    }
    REQUIRE(::kill(child.pid, SIGKILL) == 0);
    child.read_all();  // lines written before the kill
    const int status = child.wait_exit();
    CHECK(WIFSIGNALED(status));
    std::set<CaseId> touched;  // acted on this round, acknowledged or in flight when killed
    for (const auto& line : child.lines()) {
      CaseId id = 0;
      unsigned long long version = 0;
      if (std::sscanf(line.c_str(), "ack %llu %llu", reinterpret_cast<unsigned long long*>(&id), &version) == 2) {
        acknowledged[id] = std::max<std::uint64_t>(acknowledged[id], version);
        touched.insert(id);
        ++acks;
      } else if (std::sscanf(line.c_str(), "acting %llu", reinterpret_cast<unsigned long long*>(&id)) == 1) {
        touched.insert(id);
      }
    }
    // After each kill: the file is sound, every acknowledged action is there,
    // and every case the child touched (new ones included) verifies and
    // replays to its state, with nothing half-applied.
    auto sqlite = open_sqlite_store(db.string());
    REQUIRE(sqlite->integrity_check() == "ok");
    auto engine = open_checker(db);
    for (const auto& [id, version] : acknowledged) {
      INFO("case " << id);
      REQUIRE(engine->get(id).version >= version);
    }
    for (CaseId id : sqlite->case_ids()) {
      if (known.insert(id).second) touched.insert(id);
    }
    check_cases(*engine, touched);
  }
  MESSAGE(kills << " kills, " << acks << " acknowledged actions on " << acknowledged.size() << " cases");
  CHECK(acks > 100);
  auto engine = open_checker(db);
  auto store = open_sqlite_store(db.string());
  check_every_case(*engine, *store);
  fs::remove_all(dir);
}

TEST_CASE("concurrency: processes acting on the same cases lose no update; timers fire once") {
  const fs::path dir = fresh_dir("concurrent");
  const fs::path db = dir / "cases.db";
  const int cases = 30;
  {
    // Submitted a month before the children act: their warnings are due.
    auto engine = test_support::engine_on(definitions, open_sqlite_store(db.string()),
                                          std::make_shared<ManualClock>(test_support::monday_morning()));
    Submission s;
    s.target = "XK-INV-0001";
    s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
    for (int i = 0; i < cases; ++i) REQUIRE(engine->submit(s, Actor::applicant_of(company)).accepted());
  }

  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(std::make_unique<Child>(
        std::vector<std::string>{ONESTOP_STORE_CHILD, "contend", db.string(), definitions.string(), std::to_string(100 + i), "200"}));
  }
  std::map<CaseId, std::size_t> acted;  // acknowledged actions per case
  std::set<std::pair<CaseId, std::uint64_t>> versions;
  std::size_t conflicts = 0;
  std::size_t fired = 0;
  for (auto& child : children) {
    child->read_all();
    const int status = child->wait_exit();
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const auto lines = child->lines();
    REQUIRE(!lines.empty());
    CHECK(lines.back() == "done");
    for (const auto& line : lines) {
      unsigned long long id = 0, version = 0;
      std::size_t n = 0;
      if (std::sscanf(line.c_str(), "ack %llu %llu", &id, &version) == 2) {
        ++acted[id];
        // Two processes never both commit the same version of a case.
        CHECK(versions.insert({id, version}).second);
      } else if (std::sscanf(line.c_str(), "conflict %llu", &id) == 1) {
        ++conflicts;
      } else if (std::sscanf(line.c_str(), "tick %zu", &n) == 1) {
        fired += n;
      }
    }
  }
  MESSAGE(versions.size() << " actions acknowledged, " << conflicts << " conflicts, " << fired << " timers fired");
  CHECK(versions.size() > 50);

  auto engine = open_checker(db);
  auto store = open_sqlite_store(db.string());
  check_every_case(*engine, *store);
  // Nothing is left to fire, and nothing fired twice.
  CHECK(engine->tick(std::chrono::sys_days{std::chrono::year{2026} / 4 / 30} + std::chrono::hours{1}) == 0);
  std::size_t timer_inputs = 0;
  for (CaseId id : store->case_ids()) {
    const auto history = engine->history(id);
    // Every acknowledged action is in the history: no lost update.
    const auto actions = static_cast<std::size_t>(
        std::count_if(history.begin(), history.end(), [](const Event& e) { return e.kind == EventKind::acted; }));
    CHECK(actions == acted[id]);
    std::set<std::string> warnings;
    for (const auto& e : history) {
      timer_inputs += e.kind == EventKind::timer_fired ? 1 : 0;
      if (e.kind == EventKind::warning) {
        INFO("case " << id << " warning " << e.payload);
        CHECK(warnings.insert(fmt::format("{}/{}", e.task, e.payload)).second);
      }
    }
  }
  CHECK(timer_inputs > 0);
  fs::remove_all(dir);
}
