// Scripted flow tests: good scripts pass, failing expectations are reported
// with the script's file:line and what differed, malformed scripts are
// refused with file:line, and the example themes' own scripts pass.

#include <onestop/flowtest.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace fs = std::filesystem;
using namespace onestop;

namespace {

const fs::path data_dir = fs::path(ONESTOP_TEST_DATA);

// A script over tests/data/runtime (item SERIAL: accept by the hall, review
// by a reviewer; accept has 1 working day).
FlowTestReport run(const std::string& text, const FlowTestOptions& options = {}) {
  return run_flow_tests(Source{"script.yaml", text}, data_dir, options);
}

const std::string header = R"(definitions: [runtime]
start: 2026-03-02T09:00:00+08:00
actors:
  wang: { departments: [hall] }
  li: { roles: [reviewer] }
)";

const std::string submit = R"(      - submit:
          case: c1
          target: SERIAL
          applicant: { kind: natural_person, id: "34052419800101001X", name: Zhang San }
          materials: [form, plan, local_proof]
)";

std::string all_failures(const FlowTestReport& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  for (const auto& t : r.results) {
    for (const auto& f : t.failures) out += f.to_string() + "\n";
  }
  return out;
}

bool has_failure(const FlowTestResult& r, int line, const std::string& text) {
  return std::any_of(r.failures.begin(), r.failures.end(), [&](const FlowTestFailure& f) {
    return f.where.file == "script.yaml" && f.where.line == line && f.message.find(text) != std::string::npos;
  });
}

bool has_error(const FlowTestReport& r, int line, const std::string& text) {
  return std::any_of(r.errors.begin(), r.errors.end(), [&](const Diagnostic& d) {
    return d.where.file == "script.yaml" && d.where.line == line &&
           (d.message + " " + d.hint).find(text) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("flow tests: a good script passes, with every kind of step and expectation") {
  const auto report = run(header + R"(tests:
  - name: serial approval
    steps:
)" + submit + R"(      - expect:
          case: c1
          status: running
          outcome: none
          open_tasks:
            - node: accept
              assignees: { department: hall }
              due: 2026-03-03T17:30:00+08:00
          inbox: { departments: [hall], count: 1, tasks: [accept] }
      - act: { case: c1, action: accept, task: accept, as: li, expect_error: not_permitted }
      - act: { case: c1, action: accept, task: accept, as: wang }
      - act: { case: c1, action: accept, task: accept, as: wang, expect_error: invalid_state }
      - act: { action: approve, task: review, as: li }
      - expect:
          status: finished
          outcome: approved
          open_tasks: []
          warnings: { yellow: 0, red: 0 }
          history_contains: [{ kind: task_completed, node: review, actor: li }, { kind: finished, to: approved }]
          history_excludes: [{ kind: warning }]
  - name: an untouched acceptance warns once it is used up
    steps:
)" + submit + R"(      - advance: 1 working day
      - tick: {}
      - expect: { warnings: { yellow: 1, red: 1 }, history_contains: [{ kind: warning, node: accept, to: red }] }
      - tick: { fired: 0 }
)");
  INFO(all_failures(report));
  CHECK(report.errors.empty());
  REQUIRE(report.results.size() == 2);
  CHECK(report.results[0].name == "serial approval");
  CHECK(report.results[0].passed());
  CHECK(report.results[1].passed());
  CHECK(report.ok());
  CHECK(report.summary() == "2 passed, 0 failed");
}

TEST_CASE("flow tests: materials given by id suit every item of a theme that lists them") {
  // tests/data/materials: SHARED's items list site_plan as an optional copy
  // (docx or pdf) and as a required original PDF, permit from the applicant
  // and from the certificate library.
  auto test = [](const std::string& name, const std::string& materials, const std::string& then) {
    return "  - name: " + name + R"(
    steps:
      - submit:
          case: c
          target: SHARED
          applicant: { kind: natural_person, id: "34052419800101001X", name: Zhang San }
          form: { floors: 3 }
          materials: )" + materials + "\n" + then;
  };
  const auto report = run(R"(definitions: [runtime, materials]
start: 2026-03-02T09:00:00+08:00
actors:
  p: { departments: [planning] }
tests:
)" + test("all", "all", "      - expect: { status: running }\n") +
                          test("by id", "[site_plan]", "      - expect: { status: running }\n") +
                          test("a copy will not do for the fire review", "[{ id: site_plan, form: copy }]",
                               "          expect_notice: [site_plan]\n"));
  // `all` offers what any item takes from the applicant, though another
  // takes it from the library (none here).
  const auto without = run(R"(definitions: [runtime, materials]
start: 2026-03-02T09:00:00+08:00
certificates: none
tests:
)" + test("all, no library", "all", "      - expect: { status: running }\n"));
  INFO(all_failures(without));
  CHECK(without.summary() == "1 passed, 0 failed");
  INFO(all_failures(report));
  CHECK(report.errors.empty());
  CHECK(report.summary() == "3 passed, 0 failed");
}

TEST_CASE("flow tests: each failing expectation is reported with file:line, expected and actual") {
  const auto report = run(header + R"(tests:
  - name: wrong expectations
    steps:
)" + submit + R"(      - expect:
          status: finished
          outcome: approved
          open_tasks: [review]
          warnings: { yellow: 2 }
          history_contains: [{ kind: returned }]
      - act: { case: c1, action: accept, task: accept, as: wang }
      - expect:
          open_tasks:
            - node: review
              assignees: { role: lead }
      - act: { case: c1, action: approve, task: review, as: wang, expect_error: invalid_state }
      - act: { case: c1, action: approve, task: review, as: li, expect_error: not_permitted }
      - expect: { status: running }
  - name: still runs after a failing test
    steps:
)" + submit);
  REQUIRE(report.results.size() == 2);
  const auto& r = report.results[0];
  INFO(all_failures(report));
  CHECK_FALSE(r.passed());
  CHECK(has_failure(r, 15, "status: expected finished, got running"));
  CHECK(has_failure(r, 16, "outcome: expected approved, got none"));
  CHECK(has_failure(r, 17, "open_tasks: expected [review], got [accept] (missing [review], unexpected [accept])"));
  CHECK(has_failure(r, 18, "yellow warnings: expected 2, got 0"));
  CHECK(has_failure(r, 19, "history has no entry {kind: returned}"));
  CHECK(has_failure(r, 23, "task review: assignees: expected role lead, got role reviewer"));
  CHECK(has_failure(r, 25, "expected refusal with invalid_state, got not_permitted"));
  // An action that should have been refused but went through ends the test.
  CHECK(has_failure(r, 26, "expected refusal with not_permitted, but the action was accepted"));
  CHECK_FALSE(has_failure(r, 27, "status"));
  CHECK(report.results[1].passed());
  CHECK(report.failed() == 1);
  CHECK(report.passed() == 1);
  CHECK(report.summary() == "1 passed, 1 failed");
  // Rendered as file:line: message.
  CHECK(r.failures.front().to_string().rfind("script.yaml:15: case c1: status: expected finished", 0) == 0);
}

TEST_CASE("flow tests: a declared actor's inbox is what it sees; failures show the fields asked about") {
  const auto report = run(header + R"(tests:
  - name: inbox and history
    steps:
)" + submit + R"(      - act: { case: c1, action: accept, task: accept, as: wang }
      - expect: { inbox: { user: li, count: 1, tasks: [review] } }
      - expect: { inbox: { user: li, roles: [lead], count: 0 } }
      - expect: { inbox: { user: wang, count: 2 } }
      - expect: { history_contains: [{ kind: task_completed, node: accept, actor: li }] }
      - expect: { history_contains: [{ kind: submitted, payload: "Li Si" }] }
)");
  REQUIRE(report.results.size() == 1);
  const auto& r = report.results[0];
  INFO(all_failures(report));
  // li's roles (reviewer) come from `actors`, unless the query gives its own.
  CHECK_FALSE(has_failure(r, 15, "inbox"));
  CHECK_FALSE(has_failure(r, 16, "inbox"));
  CHECK(has_failure(r, 17, "inbox of user wang: expected 2 tasks, got 0"));
  CHECK_FALSE(has_failure(r, 17, "none"));
  CHECK(has_failure(r, 18, "its 'task_completed' entries: [task_completed accept -> approved by wang]"));
  CHECK(has_failure(r, 19, "submitted case -> running {\"applicant\""));
  CHECK(r.failures.size() == 3);
}

TEST_CASE("flow tests: a payload shown in a failure is cut between characters, not inside one") {
  std::string name = "a";  // the name starts at byte 57 of the payload: 120 then falls inside a character
  for (int i = 0; i < 40; ++i) name += "\xE5\xBC\xA0";  // 张
  const auto report = run(header + R"(tests:
  - name: long payload
    steps:
      - submit:
          case: c1
          target: SERIAL
          applicant: { kind: natural_person, id: "34052419800101001X", name: )" + name + R"( }
          materials: [form, plan, local_proof]
      - expect: { history_contains: [{ kind: submitted, payload: "no such text" }] }
)");
  REQUIRE(report.results.size() == 1);
  REQUIRE(report.results[0].failures.size() == 1);
  const std::string& m = report.results[0].failures[0].message;
  CHECK(m.find("...") != std::string::npos);
  // Every lead byte of a three-byte character is followed by its two continuation bytes.
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (static_cast<unsigned char>(m[i]) == 0xE5) {
      REQUIRE(i + 2 < m.size());
      CHECK((static_cast<unsigned char>(m[i + 1]) & 0xC0) == 0x80);
      CHECK((static_cast<unsigned char>(m[i + 2]) & 0xC0) == 0x80);
    }
  }
  // A directory given as a script says so.
  const auto dir = run_flow_tests(data_dir);
  REQUIRE(dir.errors.size() == 1);
  CHECK(dir.errors[0].message == "cannot read the script: it is a directory");
}

TEST_CASE("flow tests: steps that cannot be done stop the test and say why") {
  const auto report = run(header + R"(tests:
  - name: act on a task that is not there
    steps:
)" + submit + R"(      - act: { case: c1, action: approve, task: review, as: li }
      - expect: { status: finished }
  - name: an unexpected refusal
    steps:
)" + submit + R"(      - act: { case: c1, action: accept, task: accept, as: li }
  - name: a refused submission
    steps:
      - submit:
          case: c1
          target: SERIAL
          applicant: { kind: natural_person, id: "34052419800101001X", name: Zhang San }
          materials: [form]
      - expect: { status: running }
)");
  REQUIRE(report.results.size() == 3);
  INFO(all_failures(report));
  CHECK(report.results[0].failures.size() == 1);
  CHECK(has_failure(report.results[0], 14, "case c1 has no task 'review'; open tasks: [accept]"));
  CHECK(has_failure(report.results[1], 23, "accept c1 task accept as li: refused with not_permitted"));
  CHECK(has_failure(report.results[2], 26, "pre-review found deficiencies"));
  CHECK(report.results[2].failures.size() == 1);
  CHECK(report.summary() == "0 passed, 3 failed");
}

TEST_CASE("flow tests: the engine refusing a step is reported at that step") {
  // A clock past the calendars' years: the tick that meets it fails, at its line.
  std::string late = header;
  late.replace(late.find("2026-03-02"), 10, "9990-03-02");
  const auto report = run(late + R"(tests:
  - name: past the years
    steps:
)" + submit + R"(      - advance: 999999 working days
      - tick: {}
      - expect: { status: running }
)");
  INFO(all_failures(report));
  REQUIRE(report.results.size() == 1);
  CHECK(report.results[0].failures.size() == 1);
  CHECK(has_failure(report.results[0], 15, "the step could not run"));  // the tick, not the test's line
  CHECK(all_failures(report).find("lies outside the years 0001..9999") != std::string::npos);
}

TEST_CASE("flow tests: an expected refusal that pre-review gives as a notice says so") {
  const auto report = run(header + R"(tests:
  - name: deficient, expecting an error
    steps:
      - submit:
          case: c1
          target: SERIAL
          applicant: { kind: natural_person, id: "34052419800101001X", name: Zhang San }
          materials: [form]
          expect_error: invalid_input
)");
  REQUIRE(report.results.size() == 1);
  INFO(all_failures(report));
  CHECK(has_failure(report.results[0], 9, "expected refusal with invalid_input, but pre-review refused it with a notice"));
  CHECK(all_failures(report).find("went through") == std::string::npos);
}

TEST_CASE("flow tests: malformed scripts are refused with file:line and nothing runs") {
  SUBCASE("unknown keys, actions, nodes, cases and time limits are all reported at once") {
    const auto report = run(header + R"(tests:
  - name: typos
    steps:
)" + submit + R"(      - act: { case: c1, action: aprove, task: review, as: li }
      - act: { case: c9, action: approve, task: reveiw, as: li }
      - expect: { stauts: running }
      - advance: 3 fortnights
      - wait: 3 working days
)");
    INFO(all_failures(report));
    CHECK(report.results.empty());
    CHECK(report.malformed_scripts == 1);
    CHECK_FALSE(report.ok());
    CHECK(report.summary() == "0 passed, 1 failed");
    CHECK(has_error(report, 14, "action 'aprove' is not one of"));
    CHECK(has_error(report, 14, "did you mean 'approve'?"));
    CHECK(has_error(report, 15, "no case 'c9' was submitted before this step"));
    CHECK(has_error(report, 16, "unknown key 'stauts' in expect"));
    CHECK(has_error(report, 17, "advance '3 fortnights' is not a time limit"));
    CHECK(has_error(report, 18, "unknown key 'wait'"));
    for (const auto& e : report.errors) CHECK(e.to_string().rfind("script.yaml:", 0) == 0);
  }
  SUBCASE("names checked against the definitions") {
    const auto report = run(header + R"(tests:
  - name: unknown names
    steps:
      - submit:
          case: c1
          target: SERAIL
          applicant: { kind: natural_person, id: "34052419800101001X" }
      - act: { case: c1, action: approve, task: reveiw, as: li }
      - expect: { open_tasks: [NO-SUCH-ITEM/accept] }
      - act: { case: c1, action: approve, task: SUB-A/lookup, as: li }
      - act: { case: c1, action: approve, task: a/accept, as: li }
      - act: { case: c1, action: approve, task: review, as: wamg, expect_error: not_permitted }
      - act: { case: c1, action: approve, task: review, as: zhao, expect_error: not_permitted }
      - expect: { inbox: { departments: [hal], item: SERAIL, count: 0 } }
      - expect: { open_tasks: [{ node: review, assignees: { role: [reveiwer] } }] }
)");
    INFO(all_failures(report));
    CHECK(report.malformed_scripts == 1);
    CHECK(has_error(report, 9, "target 'SERAIL' is neither an item code nor a theme id (did you mean 'SERIAL'?)"));
    CHECK(has_error(report, 13, "no flow has a node 'reveiw' (did you mean 'review'?)"));
    CHECK(has_error(report, 14, "'NO-SUCH-ITEM' in 'NO-SUCH-ITEM/accept' is neither an item code nor a subflow node"));
    // A node of another flow than the one the item (or subflow node) runs.
    CHECK(has_error(report, 15, "the flow 'SUB-A' runs has no node 'lookup' (its nodes: no, review, start, yes)"));
    CHECK(has_error(report, 16, "the flow 'a' runs has no node 'accept'"));
    // A near miss of a declared actor is a slip; any other user id is a stranger.
    CHECK(has_error(report, 17, "'wamg' is not an actor of the script: did you mean 'wang'?"));
    CHECK_FALSE(std::any_of(report.errors.begin(), report.errors.end(),
                            [](const Diagnostic& d) { return d.where.line == 18; }));
    CHECK(has_error(report, 19, "inbox: 'hal' is not a department of the definitions' organisation (did you mean 'hall'?)"));
    CHECK(has_error(report, 19, "inbox item 'SERAIL' is not an item code"));
    CHECK(has_error(report, 20, "assignees: 'reveiwer' is not a role"));
  }
  SUBCASE("actors, certificates and handlers are checked where they are written") {
    const auto report = run(R"(definitions: [runtime]
certificates: [licence, business_licence, passport]
handlers:
  registry_check: approved
  no_such_handler: approved
actors:
  wang: { departments: [hall] }
  li: { roles: [reveiwer] }
tests:
  - name: x
    steps:
)" + submit);
    INFO(all_failures(report));
    CHECK(has_error(report, 2, "certificate 'passport' is neither a material id nor a licence type"));
    CHECK(has_error(report, 5, "no automatic step uses handler 'no_such_handler'"));
    CHECK(has_error(report, 8, "actor 'li': 'reveiwer' is not a role"));
    CHECK(report.errors.size() == 3);
  }
  SUBCASE("YAML syntax errors") {
    const auto report = run("definitions: [runtime]\ntests:\n  - name: x\n    steps: [\n");
    CHECK(report.malformed_scripts == 1);
    REQUIRE_FALSE(report.errors.empty());
    CHECK(report.errors.front().where.line > 0);
  }
  SUBCASE("missing definitions and tests") {
    const auto report = run("start: 2026-03-02T09:00:00+08:00\n");
    CHECK(has_error(report, 1, "has no 'definitions'"));
    CHECK(has_error(report, 1, "has no 'tests'"));
  }
  SUBCASE("definitions that do not load") {
    const auto report = run("definitions: [no-such-directory]\ntests:\n  - { name: x, steps: [] }\n");
    CHECK(report.malformed_scripts == 1);
    CHECK(has_error(report, 1, "do not load"));  // at the definitions
    CHECK(has_error(report, 3, "test 'x' has no steps"));
  }
  SUBCASE("a script file that does not exist") {
    const auto report = run_flow_tests(data_dir / "no-such-script.yaml");
    CHECK(report.malformed_scripts == 1);
    CHECK(report.summary() == "0 passed, 1 failed");
    REQUIRE(report.errors.size() == 1);
    CHECK(report.errors[0].message == "cannot read the script: no such file");
  }
  SUBCASE("names are checked against the definitions even when the script has other problems") {
    // The unknown node used to go unreported until the other error was fixed.
    const auto report = run(header + R"(tests:
  - name: two problems
    steps:
)" + submit + R"(      - act: { case: c1, action: approve, task: nosuch, as: li }
      - tick: { fired: x }
)");
    INFO(all_failures(report));
    CHECK(has_error(report, 14, "no flow has a node 'nosuch'"));
    CHECK(has_error(report, 15, "fired"));
  }
  SUBCASE("a task the script cannot read is reported once") {
    const auto report = run(header + R"(tests:
  - name: bad task
    steps:
)" + submit + R"(      - act: { case: c1, action: approve, task: "a b", as: li }
)");
    INFO(all_failures(report));
    CHECK(has_error(report, 14, "is not a node id"));
    CHECK(std::none_of(report.errors.begin(), report.errors.end(),
                       [](const Diagnostic& d) { return d.message.find("has no 'task'") != std::string::npos; }));
  }
  SUBCASE("statements that state nothing") {
    const auto report = run(header + R"(tests:
  - name: empty
    steps:
)" + submit + R"(      - expect: { warnings: {} }
      - expect: { form: {} }
      - expect: { inbox: [] }
      - expect: { history_contains: [] }
      - expect: { history_contains: [{ payload: "" }] }
)");
    INFO(all_failures(report));
    CHECK(has_error(report, 14, "warnings states nothing"));
    CHECK(has_error(report, 15, "form states nothing"));
    CHECK(has_error(report, 16, "inbox is empty"));
    CHECK(has_error(report, 17, "history_contains is empty"));
    CHECK(has_error(report, 18, "payload is empty"));
  }
  SUBCASE("an empty value is reported on its key's line, once") {
    // It was placed where the next token starts, a line further down.
    const auto report = run("definitions: [runtime]\ntests:\n  - name:\n    steps:\n      - expect:\n");
    INFO(all_failures(report));
    REQUIRE(report.errors.size() == 2);
    CHECK(report.errors[0].where.line == 3);
    CHECK(report.errors[0].where.column == 10);
    CHECK(report.errors[0].message == "test name must be a string, not null");
    CHECK(report.errors[1].where.line == 5);
    CHECK(report.errors[1].where.column == 16);
  }
  SUBCASE("YAML merge keys are named as such") {
    const auto report = run(header + R"(tests:
  - name: merge
    steps:
)" + submit + R"(      - act: { <<: { case: c1 }, action: approve, task: review, as: li }
)");
    INFO(all_failures(report));
    CHECK(has_error(report, 14, "YAML merge keys ('<<') are not supported"));
  }
}

TEST_CASE("flow tests: a script that is not a regular file is read only up to the size limit") {
  const FlowTestReport report = run_flow_tests(std::filesystem::path("/dev/zero"));
  REQUIRE(report.errors.size() == 1);
  CHECK(report.errors[0].code == "file-too-large");
  CHECK(report.malformed_scripts == 1);
}

TEST_CASE("flow tests: advance lands where a limit of that length runs out, and the name filter picks tests") {
  const auto report = run(header + R"(tests:
  - name: advance by one working day
    steps:
)" + submit + R"(      - advance: 1 working day
      - tick: { fired: 2 }
      - expect: { warnings: { red: 1 } }
  - name: advance to an instant, then by hours
    start: 2026-03-06T16:00:00+08:00
    steps:
)" + submit + R"(      - advance: { to: 2026-03-09T09:00:00+08:00 }
      - advance: 2 working hours
      - expect:
          open_tasks: [{ node: accept, due: 2026-03-09T17:30:00+08:00 }]
      - advance: 1 natural day
      - tick: {}
      - expect: { warnings: { red: 1 } }
)",
                          FlowTestOptions{"advance to"});
  INFO(all_failures(report));
  REQUIRE(report.results.size() == 1);
  CHECK(report.results[0].name == "advance to an instant, then by hours");
  CHECK(report.results[0].passed());
}

TEST_CASE("flow tests: every example theme ships scripts, and they pass") {
  std::vector<fs::path> scripts;
  for (const char* theme : {"investment-project", "business-startup", "residence-permit"}) {
    const fs::path dir = fs::path(ONESTOP_SOURCE_DIR) / "examples" / theme / "tests";
    REQUIRE(fs::is_directory(dir));
    std::size_t found = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() == ".yaml") {
        scripts.push_back(entry.path());
        ++found;
      }
    }
    CHECK(found >= 1);
  }
  const auto report = run_flow_tests(scripts);
  INFO(all_failures(report));
  CHECK(report.errors.empty());
  CHECK(report.results.size() >= 15);
  CHECK(report.ok());
}

TEST_CASE("flow tests: the script shown in docs/flow-tests.md runs and passes as written") {
  // The example once acted as an actor it did not declare, and failed.
  const fs::path doc = fs::path(ONESTOP_SOURCE_DIR) / "docs" / "flow-tests.md";
  std::ifstream in(doc);
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto section = text.find("## A script");
  REQUIRE(section != std::string::npos);
  const auto open = text.find("```yaml\n", section);
  REQUIRE(open != std::string::npos);
  const auto body = open + 8;
  const auto close = text.find("```", body);
  REQUIRE(close != std::string::npos);
  const std::string script = text.substr(body, close - body);
  // `definitions: [..]` is relative to a script in examples/residence-permit/tests.
  const auto report = run_flow_tests(Source{"flow-tests.md", script},
                                     fs::path(ONESTOP_SOURCE_DIR) / "examples" / "residence-permit" / "tests");
  INFO(all_failures(report));
  CHECK(report.errors.empty());
  CHECK(report.summary() == "1 passed, 0 failed");
}
