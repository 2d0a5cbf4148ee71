// The portable case archive: export from one store, import into another,
// history and hash chain intact; damaged archives are refused case by case.

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>

#include "store_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace onestop;

namespace {

using test_support::company;
const fs::path definitions = fs::path(ONESTOP_TEST_DATA) / "store" / "investment.yaml";

std::unique_ptr<Engine> engine_on(std::shared_ptr<Store> store) {
  return test_support::engine_on(definitions, std::move(store),
                                 std::make_shared<ManualClock>(test_support::monday_morning()));
}

// Three cases: finished, half-way through the parallel reviews, just submitted.
void populate(Engine& engine) {
  Submission s;
  s.target = "XK-INV-0001";
  s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
  for (int steps : {7, 3, 0}) {
    const CaseId id = *engine.submit(s, Actor::applicant_of(company)).case_id;
    for (int i = 0; i < steps; ++i) {
      const Case c = engine.get(id);
      const Task& t = *c.open_tasks().front();
      Action a;
      a.case_id = id;
      a.task = t.id;
      a.kind = t.node == "accept" ? ActionKind::accept : ActionKind::approve;
      a.actor = Actor::staff_member("clerk", t.candidates.roles, t.candidates.departments);
      engine.act(a);
    }
  }
}

}  // namespace

TEST_CASE("export and import move cases between stores with their history and hash chain") {
  auto from_store = open_memory_store();
  auto from = engine_on(from_store);
  populate(*from);
  std::stringstream archive;
  CHECK(export_cases(*from_store, archive) == 3);

  const fs::path db = fs::temp_directory_path() / fmt::format("onestop-archive-{}.db", ::getpid());
  fs::remove(db);
  {
    auto to_store = open_sqlite_store(db.string());
    auto to = engine_on(to_store);
    const ImportReport report = import_cases(*to, archive);
    CHECK(report.ok());
    CHECK(report.imported == 3);
    for (CaseId id : from_store->case_ids()) {
      CHECK(to->get(id).version == from->get(id).version);
      CHECK(to->get(id).status == from->get(id).status);
      CHECK(to->history(id).back().hash == from->history(id).back().hash);
      CHECK(to->verify(id).ok);
    }
    // Exported again, the archive is the same bytes.
    std::stringstream again, first;
    export_cases(*to_store, again);
    export_cases(*from_store, first);
    CHECK(again.str() == first.str());
    // Importing twice refuses every case and stores nothing new.
    if (const char* dump = std::getenv("ONESTOP_WRITE_ARCHIVE_FIXTURE")) std::ofstream(dump) << first.str();
    std::stringstream copy(first.str());
    const ImportReport twice = import_cases(*to, copy);
    CHECK(twice.imported == 0);
    CHECK(twice.problems.size() == 3);
  }
  fs::remove(db);
}

TEST_CASE("a damaged archive: the broken case is reported, the others are imported") {
  auto from_store = open_memory_store();
  auto from = engine_on(from_store);
  populate(*from);
  std::stringstream archive;
  export_cases(*from_store, archive);
  std::vector<std::string> lines;
  for (std::string line; std::getline(archive, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  // Case 2: an actor rewritten after the fact.
  const auto at = lines[2].find("\"actor\":\"clerk\"");
  REQUIRE(at != std::string::npos);
  lines[2].replace(at, 15, "\"actor\":\"forger\"");
  // Case 3: truncated.
  lines[3] = lines[3].substr(0, lines[3].size() / 2);
  std::stringstream damaged;
  for (const auto& l : lines) damaged << l << '\n';

  auto to = engine_on(open_memory_store());
  const ImportReport report = import_cases(*to, damaged);
  CHECK(report.imported == 1);
  REQUIRE(report.problems.size() == 2);
  CHECK(report.problems[0].find("line 3: case 2") != std::string::npos);
  CHECK(report.problems[1].find("line 4") != std::string::npos);
  CHECK(to->verify(1).ok);
  CHECK_THROWS_AS(to->get(2), Error);

  std::stringstream not_archive("hello\n");
  CHECK_THROWS_AS(import_cases(*to, not_archive), Error);
}

TEST_CASE("export: a case the store lacks is refused before anything is written; a case asked for twice is written once") {
  auto from_store = open_memory_store();
  populate(*engine_on(from_store));
  std::stringstream partial;
  CHECK_THROWS_WITH_AS(export_cases(*from_store, partial, {1, 999, 2}), "export: no case 999", Error);
  CHECK(partial.str().empty());
  std::stringstream twice;
  CHECK(export_cases(*from_store, twice, {3, 1, 3}) == 2);
  std::vector<std::string> lines;
  for (std::string line; std::getline(twice, line);) lines.push_back(line);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].find("\"cases\":2,") != std::string::npos);
  CHECK(lines[1].find("{\"case\":3,") == 0);
  CHECK(lines[2].find("{\"case\":1,") == 0);
}

TEST_CASE("import: a case id that is not a whole number from 1 is refused as written; long lines read whole") {
  auto from_store = open_memory_store();
  auto from = engine_on(from_store);
  populate(*from);
  // A comment of 200,000 characters makes case 2's line span several reads.
  Action comment;
  comment.case_id = 2;
  comment.kind = ActionKind::comment;
  comment.actor = Actor::applicant_of(company);
  comment.comment = std::string(200000, 'x');
  from->act(comment);
  std::stringstream archive;
  export_cases(*from_store, archive);
  std::vector<std::string> lines;
  for (std::string line; std::getline(archive, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[2].size() > 200000);
  for (const char* bad : {"-7", "1.5", "0", "\"3\""}) {
    std::string line = lines[3];
    const auto at = line.find("\"case\":3");
    REQUIRE(at != std::string::npos);
    line.replace(at, 8, std::string("\"case\":") + bad);
    std::stringstream damaged;
    damaged << lines[0] << '\n' << lines[1] << '\n' << lines[2] << '\n' << line;  // the last line without its end
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, damaged);
    CHECK(report.imported == 2);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0] == fmt::format("line 4: case id {} is not a whole number from 1", bad));
    CHECK(to->history(2).back().hash == from->history(2).back().hash);  // the long line, whole
    CHECK(to->verify(2).ok);
  }
  // A stream that cannot be read at all (a directory): an error, not a crash.
  std::ifstream directory(fs::temp_directory_path());
  auto to = engine_on(open_memory_store());
  CHECK_THROWS_AS(import_cases(*to, directory), Error);
}

TEST_CASE("import: an archive holding fewer or more cases than its header says is a problem; its sound cases are imported") {
  auto from_store = open_memory_store();
  populate(*engine_on(from_store));
  std::stringstream archive;
  export_cases(*from_store, archive);
  std::vector<std::string> lines;
  for (std::string line; std::getline(archive, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  {
    // Cut at a line's end: every line left is sound.
    std::stringstream cut(lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n");
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, cut);
    CHECK(report.imported == 2);
    CHECK(report.refused == 0);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0] ==
          "the header (line 1) says the archive holds 3 cases, but 2 lines of cases follow; it was cut short, or lines are missing");
    CHECK(!report.ok());
  }
  {
    std::stringstream more("{\"cases\":1,\"format\":\"onestop-archive\",\"version\":1}\n" + lines[1] + "\n" + lines[2] + "\n");
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, more);
    CHECK(report.imported == 2);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0] == "the header (line 1) says the archive holds 1 case, but 2 lines of cases follow; lines were added");
  }
  std::stringstream bad_count("{\"cases\":-1,\"format\":\"onestop-archive\",\"version\":1}\n");
  auto to = engine_on(open_memory_store());
  CHECK_THROWS_WITH_AS(import_cases(*to, bad_count),
                       "import: line 1: 'cases' is -1, not a whole number from 0 to 18446744073709551615", Error);
}

TEST_CASE("the archive fixtures written by earlier builds still import") {
  // tests/data/store/: the three cases of populate(). cases-v1.jsonl from
  // before events named the flow versions their frames started on (replay
  // then takes the catalog's choice, and gives back the same events);
  // cases.jsonl with them.
  for (const char* name : {"cases-v1.jsonl", "cases.jsonl"}) {
    CAPTURE(name);
    std::ifstream in(fs::path(ONESTOP_TEST_DATA) / "store" / name);
    REQUIRE(in);
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, in);
    for (const auto& p : report.problems) MESSAGE(p);
    CHECK(report.imported == 3);
    CHECK(to->get(1).status == CaseStatus::finished);
    CHECK(to->verify(2).ok);
  }
}

TEST_CASE("the same cases export to the fixture's bytes: the history's payloads are written as they always were") {
  // The engine writes submissions and actions by hand for speed; every byte
  // of their JSON (and so every hash) must stay what the fixture holds.
  std::ifstream in(fs::path(ONESTOP_TEST_DATA) / "store" / "cases.jsonl");
  REQUIRE(in);
  std::stringstream fixture;
  fixture << in.rdbuf();
  auto store = open_memory_store();
  populate(*engine_on(store));
  std::stringstream archive;
  REQUIRE(export_cases(*store, archive) == 3);
  CHECK(archive.str() == fixture.str());
}

TEST_CASE("import: payload fields of the wrong type or out of range are refused by name, sound chain or not") {
  // A hostile or damaged archive whose hashes were made to match: replay
  // reads each payload field strictly. A float out of range read as an int
  // was undefined behaviour (UBSan, found by fuzz/fuzz_archive.cpp); a text
  // where a number belongs was nlohmann's type_error, naming no field.
  auto from_store = open_memory_store();
  auto from = engine_on(from_store);
  populate(*from);
  const std::vector<Event> finished = from->history(1);
  REQUIRE(finished.size() > 3);
  // Replaces `what` in event k's payload (or, with k == npos, in the line)
  // by `with`, and rechains the hashes from there.
  auto line_with = [&](std::size_t k, const std::string& what, const std::string& with) {
    std::vector<Event> events = finished;
    std::string& payload = events[k].payload;
    const auto at = payload.find(what);
    REQUIRE_MESSAGE(at != std::string::npos, what << " in " << payload);
    payload.replace(at, what.size(), with);
    for (std::size_t i = 0; i < events.size(); ++i) {
      events[i].prev_hash = i == 0 ? Hash{} : events[i - 1].hash;
      events[i].hash = hash_event(events[i], events[i].prev_hash);
    }
    std::string line = "{\"case\":1,\"events\":[";
    for (std::size_t i = 0; i < events.size(); ++i) line += (i ? "," : "") + event_to_json(events[i]);
    return line + "]}";
  };
  std::size_t action = 0;  // the first action
  while (action < finished.size() && finished[action].kind != EventKind::acted) ++action;
  REQUIRE(action < finished.size());
  struct Bad {
    std::size_t event;
    std::string what, with, field;
  };
  const std::vector<Bad> cases{
      {0, "\"kind\":1", "\"kind\":3.33333e+98", "'kind'"},         // applicant kind
      {0, "\"kind\":1", "\"kind\":7", "'kind'"},                   // no such applicant kind
      {0, "\"kind\":1", "\"kind\":\"1\"", "'kind'"},
      {0, "\"version\":", "\"version\":1e300,\"x\":", "'version'"},
      {0, "\"target\":\"XK-INV-0001\"", "\"target\":[]", "'target'"},
      {0, "\"applicant\":{", "\"applicant\":5,\"y\":{", "'applicant'"},
      {action, "\"task\":", "\"task\":-1,\"z\":", "'task'"},
      {action, "\"task\":", "\"task\":4294967296,\"z\":", "'task'"},
      {action, "\"departments\":[", "\"departments\":[7,", "'departments'"},
      {action, "\"kind\":0", "\"kind\":200", "'kind'"},
      {action, "\"task\":", "\"limit\":\"-3 working days\",\"task\":", "'limit'"},
      // Shown cut short in ASCII: no character split, the message stays valid UTF-8.
      {action, "\"task\":", "\"task\":\"" + std::string(30, 'x') + "\u4e00\u4e00\",\"z\":", "'task' is \"xxx"},
      // Nested deeper than any payload is written: refused when read, not
      // walked (writing it out in the message overflowed the stack).
      {action, "\"task\":", "\"task\":" + std::string(100000, '[') + std::string(100000, ']') + ",\"z\":",
       "nests deeper than 64 levels"},
  };
  for (const Bad& bad : cases) {
    INFO(bad.with);
    std::stringstream archive;
    archive << "{\"cases\":1,\"format\":\"onestop-archive\",\"version\":1}\n" << line_with(bad.event, bad.what, bad.with) << '\n';
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, archive);
    CHECK(report.imported == 0);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("line 2: case 1: import of case 1: replaying its history failed") == 0);
    CHECK(report.problems[0].find(bad.field) != std::string::npos);
  }
  // The same edit without rechaining: the hash check refuses it first.
  {
    std::stringstream archive;
    export_cases(*from_store, archive, {1});
    std::string text = archive.str();
    const auto at = text.find("\\\"task\\\":");
    REQUIRE(at != std::string::npos);
    text.insert(at + 9, "1e99,\\\"w\\\":");
    std::stringstream damaged(text);
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, damaged);
    CHECK(report.imported == 0);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("hash") != std::string::npos);
  }
  // Event and header fields: as strictly.
  for (const auto& [line, wanted] : std::vector<std::pair<std::string, std::string>>{
           {R"({"format":"onestop-archive","version":3.3e98})", "archive version 3.3e+98 is not one"},
           {R"({"format":7,"version":1})", "line 1 is not an onestop archive header"}}) {
    std::stringstream archive(line + "\n");
    auto to = engine_on(open_memory_store());
    try {
      import_cases(*to, archive);
      FAIL("imported " << line);
    } catch (const Error& e) {
      CHECK_MESSAGE(std::string(e.what()).find(wanted) != std::string::npos, e.what());
    }
  }
  {
    // An archive line nested too deep: refused as the line, not walked.
    std::stringstream deep("{\"cases\":1,\"format\":\"onestop-archive\",\"version\":1}\n{\"case\":1,\"events\":" +
                           std::string(100000, '[') + std::string(100000, ']') + "}\n");
    auto to = engine_on(open_memory_store());
    const ImportReport report = import_cases(*to, deep);
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].find("line 2: the line nests deeper than 64 levels") == 0);
  }
  std::string seq_line = line_with(action, "\"task\":", "\"task\":");
  const auto seq = seq_line.find("\"seq\":1,");
  REQUIRE(seq != std::string::npos);
  seq_line.replace(seq, 8, "\"seq\":1e99,");
  std::stringstream archive("{\"cases\":1,\"format\":\"onestop-archive\",\"version\":1}\n" + seq_line + "\n");
  auto to = engine_on(open_memory_store());
  const ImportReport report = import_cases(*to, archive);
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].find("event: 'seq' is 1e+99, not a whole number") != std::string::npos);
}

TEST_CASE("import: a case whose submission names an item version the definitions lack, or one below 1, is refused") {
  // Replay runs the flow versions the history names, so it accepted such a
  // case; the store then refused to open on the same definitions. Replay
  // itself refuses it now (import and verify alike).
  auto from_store = open_memory_store();
  populate(*engine_on(from_store));
  std::vector<Event> events = from_store->history(1);
  REQUIRE(events.front().kind == EventKind::submitted);
  const fs::path db = fs::temp_directory_path() / fmt::format("onestop-archive-version-{}.db", ::getpid());
  for (const auto& [version, wanted] : std::vector<std::pair<std::string, std::string>>{
           {"7", "line 2: case 1: import of case 1: replaying its history failed: case 1: it runs item XK-INV-0001 "
                 "version 7, which the definitions lack"},
           {"0", "line 2: case 1: import of case 1: replaying its history failed: the submission names item "
                 "XK-INV-0001 version 0; versions are whole numbers from 1"},
           {"-3", "line 2: case 1: import of case 1: replaying its history failed: the submission names item "
                  "XK-INV-0001 version -3; versions are whole numbers from 1"}}) {
    CAPTURE(version);
    std::vector<Event> edited = events;
    std::string& payload = edited.front().payload;
    const auto at = payload.find("\"version\":1");
    REQUIRE(at != std::string::npos);
    payload.replace(at, 11, "\"version\":" + version);
    for (std::size_t i = 0; i < edited.size(); ++i) {
      edited[i].prev_hash = i == 0 ? Hash{} : edited[i - 1].hash;
      edited[i].hash = hash_event(edited[i], edited[i].prev_hash);
    }
    std::string line = "{\"case\":1,\"events\":[";
    for (std::size_t i = 0; i < edited.size(); ++i) line += (i ? "," : "") + event_to_json(edited[i]);
    std::stringstream archive("{\"cases\":1,\"format\":\"onestop-archive\",\"version\":1}\n" + line + "]}\n");
    fs::remove(db);
    {
      auto store = open_sqlite_store(db.string());
      auto to = engine_on(store);
      const ImportReport report = import_cases(*to, archive);
      CHECK(report.imported == 0);
      REQUIRE(report.problems.size() == 1);
      CHECK(report.problems[0] == wanted);
    }
    // The store still opens on the definitions it was imported with.
    CHECK_NOTHROW(engine_on(open_sqlite_store(db.string())));
  }
  fs::remove(db);
}

TEST_CASE("cases started on a flow's version 1 replay on it once version 2 sits beside it") {
  // Each frame's start names the flow version it runs (submitted, a
  // draft's resubmission, subflow_started), and replay (import, verify)
  // starts the frame on that version, not the catalog's newest.
  const fs::path dir = fs::path(ONESTOP_TEST_DATA) / "versions";
  auto open_on = [](std::vector<fs::path> paths, std::shared_ptr<Store> store) {
    auto loaded = load_catalog(paths);
    REQUIRE(loaded.ok());
    EngineOptions o;
    o.store = std::move(store);
    o.clock = std::make_shared<ManualClock>(test_support::monday_morning());
    return open_engine(loaded.catalog, o);
  };
  auto old_store = open_memory_store();
  auto old_engine = open_on({dir / "common.yaml", dir / "vflow1.yaml"}, old_store);
  Submission s;
  s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
  s.target = "IT-V";
  const CaseId item_case = *old_engine->submit(s, Actor::applicant_of(company)).case_id;
  s.target = "TH-V";
  const CaseId theme_case = *old_engine->submit(s, Actor::applicant_of(company)).case_id;
  CHECK(old_engine->get(item_case).open_tasks().front()->node == "review");
  CHECK(old_engine->get(theme_case).open_tasks().front()->node == "review");
  const auto started = old_engine->history(theme_case);
  const bool named = std::any_of(started.begin(), started.end(), [](const Event& e) {
    return e.kind == EventKind::subflow_started && e.payload == R"({"flow":"vflow","flow_version":1})";
  });
  CHECK(named);
  // The old store's cases imported on other definitions.
  auto imported_on = [&](std::vector<fs::path> files) {
    std::stringstream archive;
    REQUIRE(export_cases(*old_store, archive) == 2);
    auto engine = open_on(std::move(files), open_memory_store());
    const ImportReport report = import_cases(*engine, archive);
    for (const auto& p : report.problems) MESSAGE(p);
    CHECK(report.imported == 2);
    return engine;
  };
  auto new_engine = imported_on({dir / "common.yaml", dir / "vflow1.yaml", dir / "vflow2.yaml"});
  CHECK(new_engine->verify(item_case).ok);
  CHECK(new_engine->verify(theme_case).ok);
  // They go on on version 1; a new case runs version 2.
  for (CaseId id : {item_case, theme_case}) {
    const Case c = new_engine->get(id);
    REQUIRE(c.open_tasks().size() == 1);
    CHECK(c.open_tasks().front()->node == "review");
    Action a;
    a.case_id = id;
    a.task = c.open_tasks().front()->id;
    a.kind = ActionKind::approve;
    a.actor = Actor::staff_member("clerk", {"clerk"}, {"hall"});
    new_engine->act(a);
    CHECK(new_engine->verify(id).ok);
  }
  CHECK(new_engine->get(item_case).status == CaseStatus::finished);
  CHECK(new_engine->get(theme_case).open_tasks().front()->node == "done");
  s.target = "IT-V";
  const CaseId fresh = *new_engine->submit(s, Actor::applicant_of(company)).case_id;
  CHECK(new_engine->get(fresh).open_tasks().front()->node == "check");
  CHECK(new_engine->verify(fresh).ok);

  // A new version of the item on another flow: the theme's subflow started
  // on vflow 1 replays on it (a subflow runs its item's newest version, so
  // the flow's id may differ from the one the case ran).
  auto item_v2 = imported_on({dir / "common.yaml", dir / "vflow1.yaml", dir / "item-v2.yaml"});
  CHECK(item_v2->verify(theme_case).ok);
  CHECK(item_v2->get(theme_case).open_tasks().front()->node == "review");

  // Without the version the history ran, replay says which it needs.
  std::stringstream again;
  REQUIRE(export_cases(*old_store, again) == 2);
  auto missing = open_on({dir / "common.yaml", dir / "vflow2.yaml"}, open_memory_store());
  const ImportReport refused = import_cases(*missing, again);
  CHECK(refused.imported == 0);
  REQUIRE(!refused.problems.empty());
  CHECK(refused.problems[0].find("its history ran flow 'vflow' version 1, which these definitions lack") != std::string::npos);
}

TEST_CASE("a case that ran under the first rules keeps them: its history replays to the events it made") {
  // The engine's rules changed on 2026-11-27 (core::current_rules): a
  // special procedure's maximum now resumes the clocks at the maximum, not
  // at the tick that notices it. A history whose submission names no rules
  // was made under the first ones, and replays under them.
  const fs::path defs = fs::path(ONESTOP_TEST_DATA) / "patterns" / "defs";
  auto loaded = load_catalog({defs});
  REQUIRE(loaded.ok());
  auto clock = std::make_shared<ManualClock>(test_support::monday_morning());
  EngineOptions o;
  o.store = open_memory_store();
  o.clock = clock;
  auto live = open_engine(loaded.catalog, o);
  Submission s;
  s.target = "P-SER";
  s.applicant = Applicant{ApplicantKind::natural_person, "34052419800101001X", "Zhang San"};
  const CaseId id = *live->submit(s, Actor::applicant_of(s.applicant.id)).case_id;
  Action special;
  special.case_id = id;
  special.task = live->get(id).open_tasks().front()->id;
  special.kind = ActionKind::start_special;
  special.target = "expert_review";
  special.limit = parse_time_limit("2 working days");
  special.actor = Actor::staff_member("ua", {"ra"}, {"dep_a"});
  live->act(special);
  clock->set(clock->now() + std::chrono::days{6});  // Monday to Sunday: the maximum (Wednesday) has passed
  live->tick(clock->now());
  const std::optional<Instant> due_now = live->get(id).promised_due;

  // The same history as the first rules made it: no rules named, the
  // clocks resumed at the tick.
  std::vector<Event> events = live->history(id);
  for (Event& e : events) {
    if (e.kind == EventKind::submitted) {
      const auto at = e.payload.find(",\"rules\":2");
      REQUIRE(at != std::string::npos);
      e.payload.erase(at, 10);
    }
    if (e.kind == EventKind::clock_resumed) {
      const auto at = e.payload.find(",\"from\":");
      REQUIRE(at != std::string::npos);
      e.payload.erase(at, e.payload.size() - 1 - at);
    }
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].prev_hash = i == 0 ? Hash{} : events[i - 1].hash;
    events[i].hash = hash_event(events[i], events[i].prev_hash);
  }
  o.store = open_memory_store();
  auto old = open_engine(loaded.catalog, o);
  REQUIRE_NOTHROW(old->import_case(events));
  CHECK(old->verify(id).ok);
  const std::optional<Instant> due_then = old->get(id).promised_due;
  REQUIRE(due_now);
  REQUIRE(due_then);
  CHECK(*due_then > *due_now);  // resumed at the tick, days after the maximum
  // The unedited history replays under the current rules.
  o.store = open_memory_store();
  auto again = open_engine(loaded.catalog, o);
  REQUIRE_NOTHROW(again->import_case(live->history(id)));
  CHECK(again->get(id).promised_due == due_now);
}
