// A child process for the store process tests (test_store_processes.cpp):
// acts on a SQLite store and reports, on standard output, every action the
// store acknowledged, one line each, written with write(2) as soon as
// commit returns:
//
//   acting CASE             an action on CASE is about to be committed (crash mode)
//   ack CASE VERSION        an action committed; the case is at VERSION
//   conflict CASE           a stale action was refused with `conflict`
//   tick FIRED              engine.tick fired FIRED timers
//   done                    the loop ended (contend mode)
//
// Usage:
//   onestop-store-child crash   DB DEFINITIONS SEED          act until killed
//   onestop-store-child contend DB DEFINITIONS SEED ACTIONS  act on the cases already in DB

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>

#include "store_support.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace onestop;

namespace {

using test_support::company;

void say(const std::string& line) {
  const std::string text = line + '\n';
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(1, text.data() + done, text.size() - done);
    if (n <= 0) std::_Exit(3);  // the parent is gone
    done += static_cast<std::size_t>(n);
  }
}

// Someone entitled to act on the task.
Action action_for(const Case& c, const Task& t, const std::string& user) {
  Action a;
  a.case_id = c.id;
  a.task = t.id;
  a.kind = t.node == "accept" ? ActionKind::accept : ActionKind::approve;
  a.actor = Actor::staff_member(user, t.candidates.roles, t.candidates.departments);
  a.expected_version = c.version;
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s crash|contend DB DEFINITIONS SEED [ACTIONS]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const std::string db = argv[2];
  std::mt19937 rng(static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10)));
  const int actions = argc > 5 ? std::atoi(argv[5]) : 0;
  try {
    const Instant late = std::chrono::sys_days{std::chrono::year{2026} / 4 / 30} + std::chrono::hours{1};
    const auto store = open_sqlite_store(db);
    auto engine = test_support::engine_on(std::filesystem::path(argv[3]), store, std::make_shared<ManualClock>(late));
    const std::string user = fmt::format("u{}", ::getpid());

    if (mode == "crash") {
      say("ready");  // the parent's random kill window starts here, however slow the start-up (sanitizers)
      std::vector<CaseId> mine;
      Submission s;
      s.target = "XK-INV-0001";
      s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
      for (;;) {
        if (mine.empty() || rng() % 4 == 0) {
          const SubmitResult r = engine->submit(s, Actor::applicant_of(company));
          if (!r.accepted()) return 4;
          say(fmt::format("ack {} 1", *r.case_id));
          mine.push_back(*r.case_id);
          continue;
        }
        const std::size_t pick = rng() % mine.size();
        const Case c = engine->get(mine[pick]);
        const auto open = c.open_tasks();
        if (c.status == CaseStatus::finished || open.empty()) {
          mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(pick));
          continue;
        }
        say(fmt::format("acting {}", c.id));
        const std::uint64_t v = engine->act(action_for(c, *open[rng() % open.size()], user));
        say(fmt::format("ack {} {}", c.id, v));
      }
    }

    if (mode == "contend") {
      const std::vector<CaseId> ids = store->case_ids();
      if (ids.empty()) return 5;
      for (int i = 0; i < actions; ++i) {
        if (rng() % 10 == 0) {
          say(fmt::format("tick {}", engine->tick(late)));
          continue;
        }
        const CaseId id = ids[rng() % ids.size()];
        const Case c = engine->get(id);
        const auto open = c.open_tasks();
        if (open.empty()) continue;
        try {
          const std::uint64_t v = engine->act(action_for(c, *open[rng() % open.size()], user));
          say(fmt::format("ack {} {}", id, v));
        } catch (const Error& e) {
          if (e.code() != ErrorCode::conflict) throw;
          say(fmt::format("conflict {}", id));
        }
      }
      say("done");
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store child: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
