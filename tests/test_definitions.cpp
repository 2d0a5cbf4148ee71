// Loading and checking definitions: every diagnostic kind has a fixture in
// tests/data/definitions/ and a test here; bad input never crashes.

#include "../benchmarks/flowgen.hpp"

#include <onestop/definitions.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using onestop::Diagnostic;
using onestop::LoadResult;
using onestop::Severity;

namespace {

const fs::path data = fs::path(ONESTOP_TEST_DATA) / "definitions";

LoadResult load_fixture(const std::string& name) {
  return onestop::load_catalog({data / "org.yaml", data / name});
}

std::string dump(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.to_string() + "\n";
  return out;
}

// The diagnostics with this code.
std::vector<Diagnostic> with_code(const LoadResult& r, const std::string& code) {
  std::vector<Diagnostic> out;
  std::copy_if(r.diagnostics.begin(), r.diagnostics.end(), std::back_inserter(out),
               [&](const Diagnostic& d) { return d.code == code; });
  return out;
}

// Exactly one diagnostic with `code`, at `line` (and `column` when > 0),
// whose message contains `text`.
void expect_one(const LoadResult& r, const std::string& code, int line, int column, const std::string& text,
                Severity severity = Severity::error) {
  INFO(dump(r));
  const auto found = with_code(r, code);
  REQUIRE(found.size() == 1);
  CHECK(found[0].severity == severity);
  CHECK(found[0].where.line == line);
  if (column > 0) CHECK(found[0].where.column == column);
  CHECK(found[0].message.find(text) != std::string::npos);
  CHECK(fs::path(found[0].where.file).filename() != "");
}

// Exactly these diagnostics with `code`, in order: each at its line, its
// message containing its text.
void expect_each(const LoadResult& r, const std::string& code, const std::vector<std::pair<int, std::string>>& expected) {
  INFO(dump(r));
  const auto found = with_code(r, code);
  REQUIRE(found.size() == expected.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    CHECK(found[i].where.line == expected[i].first);
    CHECK_MESSAGE(found[i].message.find(expected[i].second) != std::string::npos, found[i].message);
  }
}

}  // namespace

TEST_CASE("a valid set loads into the model with both flow versions") {
  const auto r = load_fixture("valid.yaml");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const auto& c = *r.catalog;
  const auto* item = c.find_item("XK-PLAN-0012");
  REQUIRE(item != nullptr);
  CHECK(item->type == onestop::ItemType::administrative_licence);
  CHECK(item->max_visits == 0);
  CHECK(item->time_limit.statutory == onestop::TimeLimit{20, onestop::TimeUnit::working_days});
  CHECK(item->time_limit.promised == onestop::TimeLimit{10, onestop::TimeUnit::working_days});
  REQUIRE(item->materials.size() == 3);
  CHECK(item->materials[1].source == onestop::MaterialSource::certificate_library);
  CHECK(item->materials[1].licence_type == "business_licence");
  const auto& eia = item->materials[2];
  CHECK(eia.necessity == onestop::Necessity::conditional);
  CHECK(eia.required_if.valid());
  CHECK(eia.file_types == std::vector<std::string>{"pdf", "jpg"});
  CHECK(eia.max_bytes == 20 * 1024 * 1024);

  const auto* v1 = c.find_flow("review", 1);
  const auto* v2 = c.find_flow("review", 2);
  REQUIRE(v1 != nullptr);
  REQUIRE(v2 != nullptr);
  CHECK(c.find_flow("review") == v2);  // newest by default
  CHECK(v1->nodes.size() == 4);
  const auto* sign = v2->find_node("sign");
  REQUIRE(sign != nullptr);
  CHECK(sign->kind == onestop::NodeKind::countersign);
  CHECK(sign->complete_when == onestop::CompletionRule::quota);
  CHECK(sign->quota == 2);
  CHECK(sign->on_timeout == onestop::TimeoutAction::deem_consent);
  REQUIRE(v2->returns.size() == 1);
  CHECK(v2->returns[0].to == std::vector<std::string>{"check"});
  CHECK(v2->edges.size() == 4);
  CHECK(v2->edges[3].is_default);
  CHECK(v2->edges[2].guard.text() == "all_approved");
}

TEST_CASE("YAML syntax errors name the place") {
  const auto r = load_fixture("syntax_error.yaml");
  CHECK_FALSE(r.ok());
  const auto found = with_code(r, "yaml-syntax");
  REQUIRE(found.size() == 1);
  CHECK(found[0].where.line >= 3);
  CHECK(found[0].where.file.find("syntax_error.yaml") != std::string::npos);
}

TEST_CASE("the size limit holds for any input file: a device is read up to it, a regular file not at all") {
  // /dev/zero never ends: read whole, it would take all memory.
  onestop::LoadOptions options;
  options.max_file_bytes = 1 << 20;
  const onestop::LoadResult r = onestop::load_catalog(std::vector<std::filesystem::path>{"/dev/zero"}, options);
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].code == "file-too-large");
  CHECK(r.diagnostics[0].where.file == "/dev/zero");
  // A regular file says its size and is not read at all.
  const auto big = std::filesystem::temp_directory_path() / "onestop-too-large.yaml";
  std::ofstream(big) << std::string(options.max_file_bytes + 1, '#');
  const onestop::LoadResult b = onestop::load_catalog(std::vector<std::filesystem::path>{big}, options);
  std::filesystem::remove(big);
  REQUIRE(b.diagnostics.size() == 1);
  CHECK(b.diagnostics[0].code == "file-too-large");
  CHECK(b.diagnostics[0].message == "file is 1048577 bytes; the limit is 1048576 bytes");
}

TEST_CASE("subflows that start their own flow again, directly or through other flows, are refused") {
  expect_each(load_fixture("recursive_subflow.yaml"), "undeclared-cycle",
              {{16, "runs item 'XK-SELF', whose flow is this flow itself"},
               {26, "starts flow 'pong', which starts this flow again (ping -> pong -> ping)"},
               {36, "(pong -> ping -> pong)"}});
}

TEST_CASE("duplicate keys") {
  expect_one(load_fixture("duplicate_key.yaml"), "duplicate-key", 4, 5, "duplicate key 'name'");
}

TEST_CASE("unknown keys come with a did-you-mean hint") {
  const auto r = load_fixture("unknown_key.yaml");
  expect_one(r, "unknown-key", 5, 25, "unknown key 'asignees'");
  CHECK(with_code(r, "unknown-key")[0].hint == "did you mean 'assignees'?");
  // The node then lacks its assignees, reported too.
  CHECK(with_code(r, "missing-field").size() == 1);
}

TEST_CASE("wrong types") {
  expect_each(load_fixture("wrong_type.yaml"), "wrong-type",
              {{6, "applicants must be a list"}, {8, "max_visits must be a whole number"}});
}

TEST_CASE("missing required fields") {
  const auto r = load_fixture("missing_field.yaml");
  INFO(dump(r));
  const auto found = with_code(r, "missing-field");
  REQUIRE(found.size() == 2);
  CHECK(found[0].message.find("has no 'name'") != std::string::npos);
  CHECK(found[1].message.find("has no 'flow'") != std::string::npos);
}

TEST_CASE("duplicate ids across files") {
  const auto r = load_fixture("duplicate_id.yaml");
  const auto found = with_code(r, "duplicate-id");
  INFO(dump(r));
  REQUIRE(found.size() == 1);
  CHECK(found[0].where.file.find("duplicate_id.yaml") != std::string::npos);
  CHECK(found[0].message.find("org.yaml:3") != std::string::npos);
}

TEST_CASE("unknown references: department, material, role, item, node") {
  const auto r = load_fixture("unknown_reference.yaml");
  INFO(dump(r));
  const auto found = with_code(r, "unknown-reference");
  REQUIRE(found.size() == 5);
  auto has = [&](const std::string& text, const std::string& hint) {
    return std::any_of(found.begin(), found.end(), [&](const Diagnostic& d) {
      return d.message.find(text) != std::string::npos && d.hint.find(hint) != std::string::npos;
    });
  };
  CHECK(has("'plannning' is not a declared department", "did you mean 'planning'?"));
  CHECK(has("no material 'b'", ""));
  CHECK(has("'reviewr' is not a declared role", "did you mean 'reviewer'?"));
  CHECK(has("'XK-NOPE' is not a loaded item", ""));
  CHECK(has("has no node 'don'", "did you mean 'done'?"));
}

TEST_CASE("departments' credit codes are checked; a blank one is an error, not 'none'") {
  const auto r = load_fixture("department_credit_code.yaml");
  INFO(dump(r));
  const auto found = with_code(r, "bad-identity");
  REQUIRE(found.size() == 3);
  auto at_line = [&](int line) {
    const auto it = std::find_if(found.begin(), found.end(), [&](const Diagnostic& d) { return d.where.line == line; });
    REQUIRE(it != found.end());
    return *it;
  };
  const Diagnostic wrong = at_line(6);
  CHECK(wrong.severity == Severity::warning);
  CHECK(wrong.message.find("department 'water' credit_code '11100000000013127X'") != std::string::npos);
  CHECK(wrong.message.find("expected 'D'") != std::string::npos);
  const Diagnostic blank = at_line(7);
  CHECK(blank.severity == Severity::error);
  CHECK(blank.message.find("department 'energy' credit_code is empty") != std::string::npos);
  const Diagnostic shorter = at_line(8);
  CHECK(shorter.severity == Severity::error);
  CHECK(shorter.message.find("department 'forest' credit_code") != std::string::npos);
  CHECK_FALSE(r.ok());
}

TEST_CASE("bad time limits") {
  const auto r = load_fixture("bad_time_limit.yaml");
  INFO(dump(r));
  const auto found = with_code(r, "bad-time-limit");
  REQUIRE(found.size() == 2);
  CHECK(found[0].where.line == 3);
  CHECK(found[0].message.find("'ten working days'") != std::string::npos);
  CHECK(found[1].where.line == 6);
  CHECK(found[1].message.find("'3 weeks'") != std::string::npos);
}

TEST_CASE("a bad condition points at the offending character") {
  const auto r = load_fixture("bad_condition.yaml");
  INFO(dump(r));
  const auto found = with_code(r, "bad-condition");
  REQUIRE(found.size() == 1);
  CHECK(found[0].where.line == 10);
  // "    - step -> yes: { when: form.amount >> 3 }": the expression starts at
  // column 28; the second '>' is at offset 13.
  CHECK(found[0].where.column > 28);
  CHECK(found[0].where.column <= 28 + 14);
}

TEST_CASE("start and end nodes") {
  expect_one(load_fixture("no_start.yaml"), "no-start", 2, 0, "flow 'f7' has no start node");
  expect_one(load_fixture("multiple_starts.yaml"), "multiple-starts", 5, 5, "more than one start");
  expect_one(load_fixture("no_end.yaml"), "no-end", 2, 0, "flow 'f9' has no end node");
}

TEST_CASE("reachability both ways") {
  expect_one(load_fixture("unreachable.yaml"), "unreachable", 6, 5, "'orphan' cannot be reached");
  expect_one(load_fixture("no_path_to_end.yaml"), "no-path-to-end", 6, 5, "from node 'stuck'");
}

TEST_CASE("cycles must be declared") {
  expect_one(load_fixture("undeclared_cycle.yaml"), "undeclared-cycle", 5, 5, "a, b");
  const auto ok = load_fixture("declared_loop.yaml");
  INFO(dump(ok));
  CHECK(ok.ok());
}

TEST_CASE("split and join soundness") {
  expect_one(load_fixture("unmatched_split.yaml"), "unmatched-split", 5, 5, "do not meet in one join");
  expect_one(load_fixture("deadlock.yaml"), "deadlock", 8, 5, "exclusive choice 'choose'");
  expect_one(load_fixture("unmatched_join.yaml"), "unmatched-join", 6, 5, "closes no parallel");
  // Two splits, one join: the inner split's branches meet in the outer's join.
  expect_one(load_fixture("shared_join.yaml"), "unmatched-split", 8, 5,
             "split 'p2' meet in join 'j', which also closes branches that do not begin at 'p2' (those of 'p1')");
}

TEST_CASE("back edges enter a parallel section only from inside it") {
  const auto r = load_fixture("back_into_section.yaml");
  expect_each(r, "back-into-section",
              {{30, "loop edge decide -> a leads from 'decide' into the branches of parallel split 'p1'"},
               {32, "return 'c' -> 'b1' leads from 'c' into the branches of parallel split 'p2'"},
               {33, "return 'decide' -> 'a' leads from 'decide' into the branches of parallel split 'p1'"}});
  // Back to a split, to before it, or out of a nested branch: nothing else.
  CHECK(r.diagnostics.size() == 3);
}

TEST_CASE("returns come from steps with tasks and go back to nodes a case can reach again") {
  const auto r = load_fixture("return_odd.yaml");
  expect_each(r, "bad-value",
              {{6, "start node 'start' has incoming edges"},  // a loop edge into it
               {23, "loop edge decide -> j enters a join"},
               {26, "'decide' may return to 'j', a join node"},
               {27, "returns: 'p' is a parallel node, which has no task to return from"},
               {28, "returns: 't' is a timer node, which has no task to return from"}});
}

TEST_CASE("countersign quotas") {
  const auto r = load_fixture("quota_out_of_range.yaml");
  INFO(dump(r));
  const auto found = with_code(r, "quota-out-of-range");
  REQUIRE(found.size() == 2);
  CHECK(found[0].message.find("needs 4 approvals but lists only 3") != std::string::npos);
  CHECK(found[1].message.find("150%") != std::string::npos);
  // Without signers the places are the listed users, roles and departments.
  expect_one(load_fixture("quota_places.yaml"), "quota-out-of-range", 7, 7,
             "needs 3 approvals but has only 2 places to sign");
}

TEST_CASE("a guard after a gateway that reads a decision is warned about") {
  const auto r = load_fixture("no_decision.yaml");
  CHECK(r.ok());  // a warning only
  expect_one(r, "no-decision", 14, 7, "guard of edge g -> ok reads 'approved'", Severity::warning);
}

TEST_CASE("a countersign lists each signer once") {
  expect_each(load_fixture("duplicate_signers.yaml"), "duplicate-id",
              {{6, "lists signer 'ann' twice"}, {12, "lists user 'ann' twice"}});
}

TEST_CASE("a theme some applicant can apply for; a subflow's timeout action needs its limit") {
  const auto r = load_fixture("theme_no_applicant.yaml");
  expect_one(r, "bad-value", 25, 3, "theme 'thk': no applicant can apply, its items accept no applicant kind in common "
                                    "(IT-N natural_person, IT-L legal_person)");
  expect_one(r, "missing-field", 19, 51, "node 'n' has on_timeout but no time_limit");
}

TEST_CASE("returns go upstream only") {
  expect_one(load_fixture("return_not_upstream.yaml"), "return-not-upstream", 13, 5, "'b' is not upstream");
}

TEST_CASE("limits: longest path against the promise, promise against the statute") {
  const auto r = load_fixture("limit_exceeded.yaml");
  CHECK(r.ok());  // a warning only
  expect_one(r, "limit-exceeded", 2, 0, "takes 7 working days", Severity::warning);
  expect_one(load_fixture("promised_above_statutory.yaml"), "promised-above-statutory", 2, 0,
             "promised limit 15 working days is longer than the statutory limit 10 working days");
}

TEST_CASE("every problem is reported at once") {
  const auto r = load_fixture("many_errors.yaml");
  INFO(dump(r));
  CHECK(with_code(r, "bad-time-limit").size() == 1);
  CHECK(with_code(r, "unknown-reference").size() == 2);  // role nobody, node c
  CHECK(with_code(r, "bad-value").size() == 1);          // kind tsak
  CHECK(with_code(r, "bad-value")[0].hint == "did you mean 'task'?");
  // Sorted by position.
  CHECK(std::is_sorted(r.diagnostics.begin(), r.diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.file, a.where.line) < std::tie(b.where.file, b.where.line);
  }));
}

// Speed is measured in benchmarks/ (onestop-bench-definitions), never here:
// these check that hostile input is refused by the limits, with a diagnostic.
TEST_CASE("hostile input gets a diagnostic") {
  SUBCASE("tabs") { expect_one(load_fixture("tabs.yaml"), "yaml-syntax", 2, 1, "tab"); }
  SUBCASE("invalid UTF-8") { expect_one(load_fixture("bad_utf8.yaml"), "bad-encoding", 2, 29, "0xE9"); }
  SUBCASE("billion laughs") {
    const auto r = load_fixture("billion_laughs.yaml");
    INFO(dump(r));
    CHECK(with_code(r, "too-many-nodes").size() == 1);
  }
  SUBCASE("10,000-deep nesting") {
    std::string deep(10000, '[');
    deep += std::string(10000, ']');
    const auto r = onestop::load_catalog(std::vector<onestop::Source>{{"deep.yaml", "departments: " + deep}});
    INFO(dump(r));
    CHECK(with_code(r, "too-deep").size() == 1);
    std::string block;
    for (int i = 0; i < 10000; ++i) block += std::string(static_cast<std::size_t>(i), ' ') + "k:\n";
    const auto r2 = onestop::load_catalog(std::vector<onestop::Source>{{"deep2.yaml", block}});
    CHECK_FALSE(r2.ok());
  }
  SUBCASE("a file over the size limit") {
    onestop::LoadOptions small;
    small.max_file_bytes = 1000;
    const auto r = onestop::load_catalog(std::vector<onestop::Source>{{"big.yaml", std::string(2000, '#')}}, small);
    CHECK(with_code(r, "file-too-large").size() == 1);
  }
  SUBCASE("a 10 MB file loads") {
    const auto g = onestop::bench::generate_definitions(2000, 14000);
    REQUIRE(g.items.size() > 10'000'000);
    const auto r = onestop::load_catalog(
        std::vector<onestop::Source>{{"org.yaml", g.organisation}, {"items.yaml", g.items}, {"flow.yaml", g.flow}});
    INFO(dump(r).substr(0, 2000));
    CHECK(r.ok());
    CHECK(r.catalog->items.size() == 14000);
  }
  SUBCASE("a 100,000-node flow loads and checks") {
    const auto g = onestop::bench::generate_definitions(100000, 10);
    const auto r = onestop::load_catalog(
        std::vector<onestop::Source>{{"org.yaml", g.organisation}, {"items.yaml", g.items}, {"flow.yaml", g.flow}});
    INFO(dump(r).substr(0, 2000));
    CHECK(r.ok());
    REQUIRE(r.catalog->find_flow("big") != nullptr);
    CHECK(r.catalog->find_flow("big")->nodes.size() == 100000);
  }
  SUBCASE("empty and odd documents") {
    // Empty documents are fine; anything that is not a mapping of known
    // keys is an error with a position, never a crash.
    for (const char* text : {"", "---\n", "~", "\xEF\xBB\xBF" "departments: []"}) {
      CAPTURE(text);
      const auto r = onestop::load_catalog(std::vector<onestop::Source>{{"odd.yaml", text}});
      CHECK(r.ok());
    }
    for (const char* text : {"42", "[1, 2]", "- a\n- b\n", "? complex\n: key\n", "&a x: *a", "*unknown"}) {
      CAPTURE(text);
      const auto r = onestop::load_catalog(std::vector<onestop::Source>{{"odd.yaml", text}});
      REQUIRE_FALSE(r.ok());
      CHECK(r.diagnostics.front().where.file == "odd.yaml");
    }
  }
}

TEST_CASE("time limits parse in English and Chinese") {
  using onestop::TimeLimit;
  using onestop::TimeUnit;
  CHECK(onestop::parse_time_limit("20 working days") == TimeLimit{20, TimeUnit::working_days});
  CHECK(onestop::parse_time_limit("1 working day") == TimeLimit{1, TimeUnit::working_days});
  CHECK(onestop::parse_time_limit("20个工作日") == TimeLimit{20, TimeUnit::working_days});
  CHECK(onestop::parse_time_limit("20 工作日") == TimeLimit{20, TimeUnit::working_days});
  CHECK(onestop::parse_time_limit("5 natural days") == TimeLimit{5, TimeUnit::natural_days});
  CHECK(onestop::parse_time_limit("5自然日") == TimeLimit{5, TimeUnit::natural_days});
  CHECK(onestop::parse_time_limit("8 working hours") == TimeLimit{8, TimeUnit::working_hours});
  CHECK(onestop::parse_time_limit("36 hours") == TimeLimit{36, TimeUnit::natural_hours});
  CHECK(onestop::parse_time_limit("0 working days") == TimeLimit{0, TimeUnit::working_days});
  CHECK_FALSE(onestop::parse_time_limit("-1 working days"));
  CHECK_FALSE(onestop::parse_time_limit("working days"));
  CHECK_FALSE(onestop::parse_time_limit("3 weeks"));
  CHECK_FALSE(onestop::parse_time_limit("1.5 days"));
  CHECK(onestop::TimeLimit{1, TimeUnit::working_days}.to_string() == "1 working day");
  CHECK(onestop::TimeLimit{8, TimeUnit::working_hours}.to_string() == "8 working hours");
}

TEST_CASE("graphs render as DOT") {
  const auto r = load_fixture("valid.yaml");
  REQUIRE(r.ok());
  const std::string dot = onestop::render_dot(*r.catalog->find_flow("review"), *r.catalog);
  CHECK(dot.rfind("digraph \"review\" {", 0) == 0);
  CHECK(dot.find("\"sign\" [shape=box") != std::string::npos);
  CHECK(dot.find("countersign: 2 of signers") != std::string::npos);
  CHECK(dot.find("silence = consent") != std::string::npos);
  CHECK(dot.find("\"sign\" -> \"approved\" [label=\"all_approved\"]") != std::string::npos);
  CHECK(dot.find("label=\"otherwise\"") != std::string::npos);
  CHECK(dot.find("\"sign\" -> \"check\" [style=dashed") != std::string::npos);
  CHECK(dot.find("shape=doublecircle") != std::string::npos);
}

TEST_CASE("the shipped examples validate with no errors") {
  for (const auto& dir : fs::directory_iterator(fs::path(ONESTOP_SOURCE_DIR) / "examples")) {
    if (!dir.is_directory()) continue;
    CAPTURE(dir.path().string());
    const auto r = onestop::load_catalog({dir.path()});
    INFO(dump(r));
    CHECK(r.ok());
    CHECK_FALSE(r.catalog->flows.empty());
  }
}
