// Time limits on a virtual clock: warnings fire once and at the right
// instant, suspensions move them, deemed consent completes a parallel
// branch, escalation, special procedures.

#include <onestop/onestop.hpp>

#include <doctest/doctest.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace onestop;
using namespace std::chrono;

namespace {

const std::string person = "34052419800101001X";

// Local time in UTC+8 as an instant.
Instant local(int y, unsigned m, unsigned d, int hh, int mm) {
  return sys_days{year{y} / m / d} + hours{hh - 8} + minutes{mm};
}

struct TimeFixture {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(local(2026, 3, 2, 9, 0));  // Monday
  std::unique_ptr<Engine> engine;
  CaseId id = 0;

  TimeFixture() {
    auto r = load_catalog({fs::path(ONESTOP_TEST_DATA) / "time", fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
    for (const auto& d : r.diagnostics) {
      if (d.severity == Severity::error) FAIL(d.to_string());
    }
    EngineOptions o;
    o.clock = clock;
    engine = open_engine(r.catalog, o);
    Submission s;
    s.target = "TIMED";
    s.applicant = Applicant{ApplicantKind::natural_person, person, "Zhang San"};
    id = *engine->submit(s, Actor::applicant_of(person)).case_id;
  }

  TaskId task(const std::string& node) {
    const Case c = engine->get(id);
    for (const auto* t : c.open_tasks()) {
      if (t->node == node) return t->id;
    }
    FAIL("no open task " << node);
    return 0;
  }

  void act(ActionKind kind, const std::string& node, Actor actor, std::string target = {},
           std::optional<TimeLimit> limit = {}) {
    Action a;
    a.kind = kind;
    a.case_id = id;
    a.task = task(node);
    a.actor = std::move(actor);
    a.target = std::move(target);
    a.limit = limit;
    engine->act(a);
  }

  std::vector<Event> events(EventKind kind) {
    std::vector<Event> out;
    for (auto& e : engine->history(id)) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

  void at(Instant t) {
    clock->set(t);
    engine->tick(t);
  }
};

Actor hall() { return Actor::staff_member("wang", {}, {"hall"}); }

// `catalog` with one warning rule only: "half", at 50 % of a limit used.
std::shared_ptr<const Catalog> half_warned(const Catalog& catalog) {
  auto out = std::make_shared<Catalog>(catalog);
  WarningRule half;
  half.id = "half";
  half.used_share = 0.5;
  out->rules = {half};
  return out;
}

}  // namespace

TEST_CASE("a step's warnings fire once, at the right instants") {
  TimeFixture f;
  // accept: 1 working day from Monday 09:00 runs out Tuesday 17:30 (the
  // start day does not count). 80 % of Tuesday's 7 working hours is 5.6 h:
  // 09:00-12:00 and 13:30-16:06.
  const Case c = f.engine->get(f.id);
  CHECK(*c.open_tasks()[0]->due == local(2026, 3, 3, 17, 30));
  CHECK(*c.promised_due == local(2026, 3, 16, 17, 30));   // 10 working days
  CHECK(*c.statutory_due == local(2026, 3, 30, 17, 30));  // 20 working days
  f.at(local(2026, 3, 3, 16, 5));
  CHECK(f.events(EventKind::warning).empty());
  f.at(local(2026, 3, 3, 16, 6));
  auto warnings = f.events(EventKind::warning);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].to == "yellow");
  CHECK(warnings[0].node == "accept");
  CHECK(warnings[0].payload.find("\"scope\":\"step\"") != std::string::npos);
  f.at(local(2026, 3, 3, 17, 0));
  CHECK(f.events(EventKind::warning).size() == 1);  // exactly once
  f.at(local(2026, 3, 3, 17, 30));
  warnings = f.events(EventKind::warning);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[1].to == "red");
  f.at(local(2026, 3, 4, 12, 0));
  CHECK(f.events(EventKind::warning).size() == 2);
  CHECK(f.engine->verify(f.id).ok);  // replay fires the same warnings
}

TEST_CASE("engines whose catalogs differ only in their warning rules each warn by their own") {
  // Warning instants are memoised per thread; the memo must tell catalogs
  // apart, also when one engine is gone and the next takes its place.
  auto loaded = load_catalog({fs::path(ONESTOP_TEST_DATA) / "time", fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
  REQUIRE(loaded.ok());
  const auto halfway = half_warned(*loaded.catalog);
  auto run = [](std::shared_ptr<const Catalog> catalog, std::shared_ptr<ManualClock> clock) {
    EngineOptions o;
    o.clock = clock;
    auto engine = open_engine(std::move(catalog), o);
    Submission s;
    s.target = "TIMED";
    s.applicant = Applicant{ApplicantKind::natural_person, person, "Zhang San"};
    const CaseId id = *engine->submit(s, Actor::applicant_of(person)).case_id;
    return std::pair{std::move(engine), id};
  };
  auto warnings = [](Engine& e, CaseId id) {
    std::size_t n = 0;
    for (const auto& ev : e.history(id)) n += ev.kind == EventKind::warning ? 1 : 0;
    return n;
  };
  // accept: one working day, Tuesday 09:00-17:30 with a lunch break: half of
  // it is used at 14:00, 80 % at 16:06.
  const Instant between = local(2026, 3, 3, 14, 30);
  for (int order = 0; order < 2; ++order) {
    auto clock_a = std::make_shared<ManualClock>(local(2026, 3, 2, 9, 0));
    auto clock_b = std::make_shared<ManualClock>(local(2026, 3, 2, 9, 0));
    if (order == 0) {  // side by side
      auto [a, ida] = run(loaded.catalog, clock_a);
      auto [b, idb] = run(halfway, clock_b);
      a->tick(between);
      b->tick(between);
      CHECK(warnings(*a, ida) == 0);
      CHECK(warnings(*b, idb) == 1);
    } else {  // one after the other
      {
        auto [a, ida] = run(loaded.catalog, clock_a);
        a->tick(between);
        CHECK(warnings(*a, ida) == 0);
      }
      auto [b, idb] = run(halfway, clock_b);
      b->tick(between);
      CHECK(warnings(*b, idb) == 1);
    }
  }
}

TEST_CASE("a case acted on by an engine with other warning rules is timed by that engine's rules") {
  // Each token keeps a note of its clock's earliest warning (Commit::
  // next_timer reads it when the action left the clock alone); the note
  // made under one catalog's rules must not time the case under another's.
  auto loaded = load_catalog({fs::path(ONESTOP_TEST_DATA) / "time", fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
  REQUIRE(loaded.ok());
  const auto halfway = half_warned(*loaded.catalog);
  auto store = open_memory_store();
  auto clock = std::make_shared<ManualClock>(local(2026, 3, 2, 9, 0));
  EngineOptions o;
  o.clock = clock;
  o.store = store;
  auto a = open_engine(loaded.catalog, o);  // yellow at 80 %, red at 100 %
  auto b = open_engine(halfway, o);         // "half" at 50 %
  Submission s;
  s.target = "TIMED";
  s.applicant = Applicant{ApplicantKind::natural_person, person, "Zhang San"};
  const CaseId id = *a->submit(s, Actor::applicant_of(person)).case_id;
  auto act = [&](Engine& e, ActionKind kind, const std::string& node, Actor actor) {
    Action x;
    x.kind = kind;
    x.case_id = id;
    const Case c = e.get(id);
    for (const auto* t : c.open_tasks()) {
      if (t->node == node) x.task = t->id;
    }
    REQUIRE(x.task != 0);
    x.actor = std::move(actor);
    e.act(x);
  };
  act(*a, ActionKind::accept, "accept", hall());  // planning and fire start 5-working-day clocks, noted under a's rules
  act(*b, ActionKind::approve, "planning", Actor::staff_member("li", {}, {"planning"}));  // fire's clock untouched
  // fire: 5 working days of 7 hours, counted from Tuesday (the start day
  // does not count); half of them are used on Thursday at 14:00, 80 % at
  // Friday's end. b's commit must have timed the case by the former.
  const auto due = store->due_cases(local(2026, 3, 6, 9, 0), 10);
  CHECK(due == std::vector<CaseId>{id});
  b->tick(local(2026, 3, 6, 9, 0));
  std::size_t warnings = 0;
  for (const auto& ev : b->history(id)) {
    if (ev.kind == EventKind::warning) {
      ++warnings;
      CHECK(ev.node == "fire");
    }
  }
  CHECK(warnings == 1);
}

TEST_CASE("a warning rule far past the longest limit never fires and refuses no action") {
  // Found in review: "used >= 1000%" passes validation, but on a promised
  // limit of 900,000 natural days its instant lies 8,100,000 days past the
  // due one, and every submission and action was refused computing it.
  auto loaded = load_catalog({fs::path(ONESTOP_TEST_DATA) / "time", fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
  REQUIRE(loaded.ok());
  auto far = std::make_shared<Catalog>(*loaded.catalog);
  far->items.front().time_limit.promised = TimeLimit{900000, TimeUnit::natural_days};
  far->items.front().time_limit.statutory = TimeLimit{900000, TimeUnit::natural_days};
  WarningRule tenfold;
  tenfold.id = "tenfold";
  tenfold.level = WarningLevel::red;
  tenfold.used_share = 10.0;
  tenfold.scope = RuleScope::case_limit;  // not the steps: their limits are days
  far->rules = {tenfold};
  auto clock = std::make_shared<ManualClock>(local(2026, 3, 2, 9, 0));
  EngineOptions o;
  o.clock = clock;
  auto engine = open_engine(far, o);
  Submission s;
  s.target = "TIMED";
  s.applicant = Applicant{ApplicantKind::natural_person, person, "Zhang San"};
  const CaseId id = *engine->submit(s, Actor::applicant_of(person)).case_id;
  Action a;
  a.case_id = id;
  a.kind = ActionKind::accept;
  a.task = engine->get(id).open_tasks().front()->id;
  a.actor = Actor::staff_member("clerk", {}, {"hall"});
  CHECK(engine->act(a) == 2);
  CHECK_NOTHROW(engine->tick(local(2030, 1, 1, 9, 0)));
  std::size_t warnings = 0;
  for (const auto& ev : engine->history(id)) warnings += ev.kind == EventKind::warning ? 1 : 0;
  CHECK(warnings == 0);
}

TEST_CASE("a correction request stops the clocks; the warnings move with them") {
  TimeFixture f;
  f.clock->set(local(2026, 3, 3, 10, 0));
  f.act(ActionKind::request_correction, "accept", hall());
  CHECK(f.engine->get(f.id).clock_paused);
  f.at(local(2026, 3, 3, 18, 0));  // past the original due instant: nothing fires while stopped
  CHECK(f.events(EventKind::warning).empty());
  f.clock->set(local(2026, 3, 4, 10, 0));
  Action r;
  r.kind = ActionKind::resubmit;
  r.case_id = f.id;
  r.actor = Actor::applicant_of(person);
  f.engine->act(r);
  // 6 working hours (Tuesday 10:00-12:00, 13:30-17:30) remained at the
  // pause; from Wednesday 10:00 they run out at Wednesday 17:30. Every
  // limit moves by the working time of the pause (7 hours).
  const Case c = f.engine->get(f.id);
  CHECK_FALSE(c.clock_paused);
  CHECK(*c.open_tasks()[0]->due == local(2026, 3, 4, 17, 30));
  CHECK(*c.promised_due == local(2026, 3, 17, 17, 30));
  // 80 % used: 1 hour before the pause plus 4.6 hours after it, Wednesday 16:06.
  f.at(local(2026, 3, 4, 16, 5));
  CHECK(f.events(EventKind::warning).empty());
  f.at(local(2026, 3, 4, 16, 6));
  CHECK(f.events(EventKind::warning).size() == 1);
  f.at(local(2026, 3, 4, 17, 30));
  CHECK(f.events(EventKind::warning).size() == 2);
  CHECK(f.events(EventKind::clock_paused).size() == 1);
  CHECK(f.events(EventKind::clock_resumed).size() == 1);
  CHECK(f.engine->verify(f.id).ok);
}

TEST_CASE("deemed consent completes a parallel branch and the join proceeds; escalation is recorded once") {
  TimeFixture f;
  f.act(ActionKind::accept, "accept", hall());
  // Both co-departments have 5 working days from Monday: Monday 9 March 17:30.
  f.at(local(2026, 3, 9, 17, 29));
  CHECK(f.events(EventKind::deemed_consent).empty());
  f.at(local(2026, 3, 9, 17, 30));
  const auto deemed = f.events(EventKind::deemed_consent);
  REQUIRE(deemed.size() == 1);
  CHECK(deemed[0].node == "planning");
  const auto escalated = f.events(EventKind::escalated);
  REQUIRE(escalated.size() == 1);
  CHECK(escalated[0].node == "fire");
  CHECK(escalated[0].to == "supervision");
  Case c = f.engine->get(f.id);
  const Task* planning = nullptr;
  for (const auto& t : c.tasks) {
    if (t.node == "planning") planning = &t;
  }
  REQUIRE(planning != nullptr);
  CHECK(planning->decision == Decision::deemed_approved);  // never a person's approval
  CHECK(planning->state == TaskState::completed);
  f.at(local(2026, 3, 10, 12, 0));
  CHECK(f.events(EventKind::escalated).size() == 1);
  f.act(ActionKind::approve, "fire", Actor::staff_member("f", {}, {"fire"}));
  f.act(ActionKind::approve, "decide", Actor::staff_member("boss", {"lead"}));
  CHECK(f.engine->get(f.id).outcome == Outcome::approved);
  CHECK(f.engine->verify(f.id).ok);
}

TEST_CASE("special procedures stop the clocks, each within its own maximum") {
  TimeFixture f;
  f.act(ActionKind::accept, "accept", hall());
  Action bad;
  bad.kind = ActionKind::start_special;
  bad.case_id = f.id;
  bad.task = f.task("planning");
  bad.actor = Actor::staff_member("p", {}, {"planning"});
  bad.target = "expert_review";
  CHECK_THROWS_AS(f.engine->act(bad), Error);  // no maximum
  f.act(ActionKind::start_special, "planning", Actor::staff_member("p", {}, {"planning"}), "expert_review",
        TimeLimit{3, TimeUnit::working_days});
  CHECK(f.engine->get(f.id).special_procedure == "expert_review");
  CHECK(f.engine->get(f.id).clock_paused);
  // The maximum (3 working days, to Thursday 17:30) ends it by itself.
  f.at(local(2026, 3, 5, 17, 30));
  const Case c = f.engine->get(f.id);
  CHECK(c.special_procedure.empty());
  CHECK_FALSE(c.clock_paused);
  REQUIRE(f.events(EventKind::special_ended).size() == 1);
  CHECK(f.events(EventKind::special_ended)[0].to == "maximum reached");
  // The steps' limits moved by the suspension.
  CHECK(*f.engine->get(f.id).promised_due > local(2026, 3, 16, 17, 30));
  CHECK(f.engine->verify(f.id).ok);
}

TEST_CASE("an ended special procedure resumes the clocks at once") {
  TimeFixture f;
  f.act(ActionKind::accept, "accept", hall());
  f.act(ActionKind::start_special, "fire", Actor::staff_member("f", {}, {"fire"}), "inspection",
        TimeLimit{10, TimeUnit::working_days});
  f.clock->set(local(2026, 3, 3, 9, 0));
  f.act(ActionKind::end_special, "fire", Actor::staff_member("f", {}, {"fire"}));
  CHECK_FALSE(f.engine->get(f.id).clock_paused);
  CHECK(f.events(EventKind::special_started).size() == 1);
  CHECK(f.events(EventKind::special_ended).size() == 1);
  CHECK(f.engine->verify(f.id).ok);
}

TEST_CASE("evaluation: one rating after the case ends; a poor one opens a follow-up with its own limit") {
  TimeFixture f;
  Action rate;
  rate.kind = ActionKind::evaluate;
  rate.case_id = f.id;
  rate.actor = Actor::applicant_of(person);
  rate.rating = 5;
  rate.comment = "I was sent away twice";
  CHECK_THROWS_AS(f.engine->act(rate), Error);  // not ended yet
  Action withdraw;
  withdraw.kind = ActionKind::withdraw;
  withdraw.case_id = f.id;
  withdraw.actor = Actor::applicant_of(person);
  f.engine->act(withdraw);
  Action stranger = rate;
  stranger.actor = Actor::applicant_of("someone else");
  CHECK_THROWS_AS(f.engine->act(stranger), Error);
  Action bad = rate;
  bad.rating = 6;
  CHECK_THROWS_AS(f.engine->act(bad), Error);
  f.engine->act(rate);
  try {
    f.engine->act(rate);
    FAIL("rated twice");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::conflict);
  }
  Case c = f.engine->get(f.id);
  REQUIRE(c.evaluation.has_value());
  CHECK(c.evaluation->poor());
  REQUIRE(c.follow_up.has_value());
  CHECK(c.follow_up->due == local(2026, 3, 23, 17, 30));  // 15 working days
  // Overdue follow-ups raise a red warning once.
  f.at(local(2026, 3, 24, 9, 0));
  f.at(local(2026, 3, 25, 9, 0));
  const auto warnings = f.events(EventKind::warning);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].payload.find("follow_up") != std::string::npos);
  Action fix;
  fix.kind = ActionKind::rectify;
  fix.case_id = f.id;
  fix.actor = Actor::staff_member("x", {}, {"planning"});
  fix.comment = "called the applicant; retrained the window staff";
  CHECK_THROWS_AS(f.engine->act(fix), Error);  // not the implementing department
  fix.actor = Actor::staff_member("wang", {}, {"hall"});
  f.engine->act(fix);
  c = f.engine->get(f.id);
  CHECK(c.follow_up->closed.has_value());
  CHECK(f.engine->verify(f.id).ok);
}

TEST_CASE("supervision statistics: on-time rate, overdue, handling time, warnings, evaluations") {
  TimeFixture f;  // case 1: finishes on time
  f.act(ActionKind::accept, "accept", hall());
  f.clock->set(local(2026, 3, 4, 10, 0));
  f.act(ActionKind::approve, "planning", Actor::staff_member("p", {}, {"planning"}));
  f.act(ActionKind::approve, "fire", Actor::staff_member("f", {}, {"fire"}));
  f.act(ActionKind::approve, "decide", Actor::staff_member("boss", {"lead"}));
  Action rate;
  rate.kind = ActionKind::evaluate;
  rate.case_id = f.id;
  rate.actor = Actor::applicant_of(person);
  rate.rating = 1;
  f.engine->act(rate);
  // Case 2: still open, past its promised limit (10 working days from 4 March).
  Submission s;
  s.target = "TIMED";
  s.applicant = Applicant{ApplicantKind::natural_person, person, "Zhang San"};
  const CaseId late = *f.engine->submit(s, Actor::applicant_of(person)).case_id;
  f.at(local(2026, 3, 20, 9, 0));

  const SupervisionStats stats = f.engine->statistics({});
  CHECK(stats.total.cases == 2);
  CHECK(stats.total.finished == 1);
  CHECK(stats.total.open == 1);
  CHECK(stats.total.finished_on_time == 1);
  CHECK(stats.total.open_overdue == 1);
  CHECK(stats.total.on_time_rate == doctest::Approx(1.0));
  // Submitted Monday 09:00, finished Wednesday 10:00: the start day does not
  // count, Tuesday counts fully, Wednesday 1 of 7 working hours.
  CHECK(stats.total.mean_days == doctest::Approx(1.0 + 1.0 / 7.0));
  CHECK(stats.total.red_warnings >= 1);     // the late case's accept step and more
  CHECK(stats.total.yellow_warnings >= 1);
  CHECK(stats.total.evaluations == 1);
  CHECK(stats.total.satisfaction_rate == doctest::Approx(1.0));
  CHECK(stats.by_target.at("TIMED").cases == 2);
  CHECK(stats.by_department.at("hall").cases == 2);
  CHECK(stats.by_month.at("2026-03").cases == 2);
  StatsQuery since;
  since.from = local(2026, 3, 3, 0, 0);
  CHECK(f.engine->statistics(since).total.cases == 1);
  StatsQuery other;
  other.target = "OTHER";
  CHECK(f.engine->statistics(other).total.cases == 0);
  // None finished: the rate is 1, as StatsFigures says, in the total too
  // (which read 0 when no case matched at all).
  CHECK(f.engine->statistics(other).total.on_time_rate == 1.0);
  CHECK(f.engine->statistics(other).total.finished == 0);
  CHECK(f.engine->verify(late).ok);

  // The late case finished too: percentiles by nearest rank. p50 of two is
  // the smaller (it was the larger: index p * n), p90 and max the larger.
  f.id = late;
  f.act(ActionKind::accept, "accept", hall());
  f.act(ActionKind::approve, "planning", Actor::staff_member("p", {}, {"planning"}));
  f.act(ActionKind::approve, "fire", Actor::staff_member("f", {}, {"fire"}));
  f.act(ActionKind::approve, "decide", Actor::staff_member("boss", {"lead"}));
  const StatsFigures two = f.engine->statistics({}).total;
  REQUIRE(two.finished == 2);
  CHECK(two.p50_days == doctest::Approx(1.0 + 1.0 / 7.0));
  CHECK(two.max_days > two.p50_days + 5);
  CHECK(two.p90_days == doctest::Approx(two.max_days));
  CHECK(two.p99_days == doctest::Approx(two.max_days));
}

TEST_CASE("percentages in reports never read 100 % while a case is late, nor 0 % while one is on time") {
  CHECK(percent_text(1.0) == "100.0 %");
  CHECK(percent_text(0.0) == "0.0 %");
  CHECK(percent_text(0.8567) == "85.7 %");
  CHECK(percent_text(9999.0 / 10000.0) == "99.9 %");  // one late case in 10,000
  CHECK(percent_text(1.0 / 100000.0) == "0.1 %");
  CHECK(percent_text(0.99996, 2) == "99.99 %");
  CHECK(percent_text(0.5, 0) == "50 %");
}
