// Snapshots written by an earlier build load in this one: a small SQLite
// database made by the first persistent build (tests/data/store/fixture-v1.db,
// schema version 1, snapshot class versions 1) is opened, every case is
// decoded and verified, and the open cases go on to their end.
//
// To write a new fixture (only when the persistent format changes on
// purpose, keeping the old one too):
//   ONESTOP_WRITE_STORE_FIXTURE=tests/data/store/fixture-vN.db onestop-tests -tc='*fixture database*'

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>

#include "store_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace onestop;

namespace {

using test_support::company;
const fs::path definitions = fs::path(ONESTOP_TEST_DATA) / "store" / "investment.yaml";

std::unique_ptr<Engine> engine_on(std::shared_ptr<Store> store, std::shared_ptr<ManualClock> clock) {
  return test_support::engine_on(definitions, std::move(store), std::move(clock));
}

// Acts on the first open task as someone entitled to; false when none is open.
bool step(Engine& engine, CaseId id, ActionKind kind = ActionKind::approve) {
  const Case c = engine.get(id);
  const auto open = c.open_tasks();
  if (open.empty()) return false;
  const Task& t = *open.front();
  Action a;
  a.case_id = id;
  a.task = t.id;
  a.kind = t.node == "accept" ? ActionKind::accept : kind;
  a.actor = Actor::staff_member("clerk", t.candidates.roles, t.candidates.departments);
  engine.act(a);
  return true;
}

// Cases in many states: finished approved, finished rejected, waiting on
// parallel reviews, suspended for correction, past their limits (warned),
// evaluated with a poor rating (follow-up open).
void write_fixture(const fs::path& path) {
  fs::remove(path);
  auto clock = std::make_shared<ManualClock>(std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + std::chrono::hours{1});
  auto store = open_sqlite_store(path.string());
  auto engine = engine_on(store, clock);
  Submission s;
  s.target = "XK-INV-0001";
  s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
  s.form = {{"investment", Value(1.5e7)}, {"sector", Value("steel")}};
  auto submit = [&] { return *engine->submit(s, Actor::applicant_of(company)).case_id; };
  const CaseId approved = submit();
  while (step(*engine, approved)) {
  }
  const CaseId rejected = submit();
  for (;;) {
    const Case c = engine->get(rejected);
    const auto open = c.open_tasks();
    if (open.empty()) break;
    step(*engine, rejected, open.front()->node == "decide" ? ActionKind::reject : ActionKind::approve);
  }
  const CaseId parallel = submit();
  step(*engine, parallel);
  step(*engine, parallel);
  const CaseId correction = submit();
  {
    const Case c = engine->get(correction);
    Action a;
    a.case_id = correction;
    a.task = c.open_tasks().front()->id;
    a.kind = ActionKind::request_correction;
    a.comment = "the site plan is missing";
    a.actor = Actor::staff_member("clerk", {}, {"hall"});
    engine->act(a);
  }
  const CaseId late = submit();
  step(*engine, late);
  clock->advance(std::chrono::days{30});
  engine->tick(clock->now());
  Action rate;
  rate.case_id = approved;
  rate.kind = ActionKind::evaluate;
  rate.rating = 5;
  rate.comment = "too slow";
  rate.actor = Actor::applicant_of(company);
  engine->act(rate);
  REQUIRE(store->integrity_check() == "ok");
  (void)parallel;
}

}  // namespace

TEST_CASE("a fixture database written by an earlier build loads and its cases go on") {
  if (const char* out = std::getenv("ONESTOP_WRITE_STORE_FIXTURE")) write_fixture(out);
  const fs::path fixture = fs::path(ONESTOP_TEST_DATA) / "store" / "fixture-v1.db";
  REQUIRE(fs::exists(fixture));
  // Work on a copy: opening may upgrade the schema in place.
  const fs::path copy = fs::temp_directory_path() / fmt::format("onestop-fixture-{}.db", ::getpid());
  fs::remove(copy);
  fs::copy_file(fixture, copy);
  {
    auto clock = std::make_shared<ManualClock>(std::chrono::sys_days{std::chrono::year{2026} / 4 / 6} + std::chrono::hours{1});
    auto store = open_sqlite_store(copy.string());
    auto engine = engine_on(store, clock);
    const auto ids = store->case_ids();
    REQUIRE(ids.size() == 5);
    CHECK(engine->get(1).status == CaseStatus::finished);
    CHECK(engine->get(1).outcome == Outcome::approved);
    CHECK(engine->get(1).follow_up.has_value());
    CHECK(engine->get(2).outcome == Outcome::rejected);
    CHECK(engine->get(4).status == CaseStatus::waiting_for_applicant);
    for (CaseId id : ids) {
      const HistoryCheck check = engine->verify(id);
      INFO("case " << id << ": " << check.message);
      CHECK(check.ok);
    }
    // The open cases go on to their end on this build.
    for (CaseId id : {CaseId{3}, CaseId{5}}) {
      while (step(*engine, id)) {
      }
      CHECK(engine->get(id).status == CaseStatus::finished);
      CHECK(engine->verify(id).ok);
    }
    CHECK(store->integrity_check() == "ok");
  }
  fs::remove(copy);
  fs::remove(fs::path(copy.string() + "-wal"));
  fs::remove(fs::path(copy.string() + "-shm"));
}
