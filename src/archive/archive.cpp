// The portable case archive (JSON Lines).

#include <onestop/archive.hpp>
#include <onestop/error.hpp>

#include "common/json_fields.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <unordered_set>

namespace onestop {

namespace {

using json = nlohmann::json;

constexpr int archive_version = 1;

std::string iso_utc(Instant t) {
  const auto days = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{t - days};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count());
}

Instant parse_iso_utc(const std::string& s) {
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, se = 0;
  char z = 0;
  if (std::sscanf(s.c_str(), "%d-%u-%uT%u:%u:%u%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 || z != 'Z') {
    throw Error(ErrorCode::invalid_input, fmt::format("'{}' is not a UTC time like 2026-03-02T01:00:00Z", s));
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{mo}, std::chrono::day{d}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 59) throw Error(ErrorCode::invalid_input, fmt::format("'{}' is not a valid time", s));
  return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{se};
}

Hash parse_hash(const std::string& hex) {
  Hash h{};
  if (hex.size() != 64) throw Error(ErrorCode::invalid_input, fmt::format("hash '{}' is not 64 hex digits", hex));
  auto nibble = [&](char c) -> std::uint8_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
    throw Error(ErrorCode::invalid_input, fmt::format("hash '{}' is not hex", hex));
  };
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return h;
}

EventKind parse_kind(const std::string& name) {
  for (int k = 0; k <= static_cast<int>(EventKind::follow_up_closed); ++k) {
    if (to_string(static_cast<EventKind>(k)) == name) return static_cast<EventKind>(k);
  }
  throw Error(ErrorCode::invalid_input, fmt::format("unknown event kind '{}'", name));
}

json event_json(const Event& e) {
  return json{{"seq", e.seq},       {"at", iso_utc(e.at)}, {"actor", e.actor},     {"kind", to_string(e.kind)},
              {"task", e.task},     {"node", e.node},      {"from", e.from},       {"to", e.to},
              {"payload", e.payload}, {"prev_hash", to_hex(e.prev_hash)}, {"hash", to_hex(e.hash)}};
}

// A required field of an event; a whole number T holds, or a text.
template <class T>
T field(const json& j, const char* name) {
  const json* v = json_fields::field(j, name);
  if (!v) throw Error(ErrorCode::invalid_input, fmt::format("event: no '{}'", name));
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      return json_fields::text_value(*v, name);
    } else {
      return json_fields::whole_value<T>(*v, name);
    }
  } catch (const Error& e) {
    throw Error(ErrorCode::invalid_input, fmt::format("event: {}", e.what()));
  }
}

Event event_of(const json& j, CaseId case_id) {
  if (!j.is_object()) throw Error(ErrorCode::invalid_input, "event: not an object");
  Event e;
  e.case_id = case_id;
  e.seq = field<std::uint64_t>(j, "seq");
  e.at = parse_iso_utc(field<std::string>(j, "at"));
  e.actor = field<std::string>(j, "actor");
  e.kind = parse_kind(field<std::string>(j, "kind"));
  e.task = field<TaskId>(j, "task");
  e.node = field<std::string>(j, "node");
  e.from = field<std::string>(j, "from");
  e.to = field<std::string>(j, "to");
  e.payload = field<std::string>(j, "payload");
  e.prev_hash = parse_hash(field<std::string>(j, "prev_hash"));
  e.hash = parse_hash(field<std::string>(j, "hash"));
  return e;
}

// One line of an archive, at most 64 MiB (a case's whole history is one
// line): a stream without line ends, such as /dev/zero, is refused instead
// of read until memory runs out.
bool read_line(std::istream& in, std::string& line) {
  constexpr std::size_t max_line = std::size_t{64} << 20;
  line.clear();
  char chunk[1 << 16];
  for (;;) {
    in.getline(chunk, sizeof chunk);
    const auto got = static_cast<std::size_t>(in.gcount());
    const bool more = in.fail() && !in.eof() && got == sizeof chunk - 1;  // no line end within the chunk
    const bool last = !more && in.eof();                                  // the end, with no line end
    if (in.fail() && !more && !last) throw Error(ErrorCode::invalid_input, "import: the archive cannot be read");
    line.append(chunk, more || last ? got : got - 1);                     // else the line end was counted
    if (line.size() > max_line) {
      throw Error(ErrorCode::invalid_input, fmt::format("import: a line is longer than {} bytes", max_line));
    }
    if (!more) return !last || !line.empty();
    in.clear();
  }
}

}  // namespace

std::string event_to_json(const Event& event) { return event_json(event).dump(); }

Event event_from_json(const std::string& text, CaseId case_id) {
  json j;
  try {
    j = json_fields::parse(text, "the event");
  } catch (const Error& e) {
    throw Error(ErrorCode::invalid_input, fmt::format("event: {}", e.what()));
  }
  return event_of(j, case_id);
}

std::size_t export_cases(Store& store, std::ostream& out, const std::vector<CaseId>& wanted) {
  std::vector<CaseId> ids = wanted.empty() ? store.case_ids() : std::vector<CaseId>();
  if (!wanted.empty()) {
    // Every case asked for must be there before a byte is written, so that
    // a missing one leaves no archive whose header counts cases it lacks;
    // a case asked for twice is written once, where it was first asked for.
    std::vector<CaseId> stored = store.case_ids();
    std::sort(stored.begin(), stored.end());
    std::unordered_set<CaseId> seen;
    for (CaseId id : wanted) {
      if (!std::binary_search(stored.begin(), stored.end(), id)) {
        throw Error(ErrorCode::not_found, fmt::format("export: no case {}", id));
      }
      if (seen.insert(id).second) ids.push_back(id);
    }
  }
  out << json{{"format", "onestop-archive"}, {"version", archive_version}, {"cases", ids.size()}}.dump() << '\n';
  std::size_t written = 0;
  for (CaseId id : ids) {
    const auto events = store.history(id);
    if (events.empty()) throw Error(ErrorCode::not_found, fmt::format("export: no case {}", id));
    json line{{"case", id}, {"events", json::array()}};
    auto& list = line["events"];
    for (const auto& e : events) list.push_back(event_json(e));
    out << line.dump() << '\n';
    ++written;
  }
  out.flush();
  if (!out) throw Error(ErrorCode::storage, "export: writing the archive failed");
  return written;
}

ImportReport import_cases(Engine& engine, std::istream& in) {
  ImportReport report;
  std::string text;
  if (!read_line(in, text)) throw Error(ErrorCode::invalid_input, "import: the archive is empty");
  json header;
  try {
    header = json_fields::parse(text, "line 1");
  } catch (const Error&) {
    throw Error(ErrorCode::invalid_input, "import: line 1 is not an onestop archive header");
  }
  if (!header.is_object() || !header.contains("format") || header["format"] != "onestop-archive") {
    throw Error(ErrorCode::invalid_input, "import: line 1 is not an onestop archive header");
  }
  if (!header.contains("version") || header["version"] != archive_version) {
    throw Error(ErrorCode::invalid_input, fmt::format("import: archive version {} is not one this build reads ({})",
                                                      header.contains("version") ? json_fields::shown(header["version"]) : "(none)",
                                                      archive_version));
  }
  // The number of cases the header says follow: an archive cut short at a
  // line's end, or with lines added, is otherwise whole line by line.
  std::optional<std::size_t> announced;
  if (const json* cases = json_fields::field(header, "cases")) {
    try {
      announced = json_fields::whole_value<std::size_t>(*cases, "cases");
    } catch (const Error& e) {
      throw Error(ErrorCode::invalid_input, fmt::format("import: line 1: {}", e.what()));
    }
  }
  std::size_t line_no = 1;
  std::size_t case_lines = 0;
  while (read_line(in, text)) {
    ++line_no;
    // A blank line (or one of spaces, or a CRLF archive's "\r") holds no case.
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++case_lines;
    CaseId id = 0;
    try {
      const json line = json_fields::parse(text, "the line");
      if (!line.is_object() || !line.contains("case") || !line.contains("events") || !line["events"].is_array()) {
        throw Error(ErrorCode::invalid_input, "not a case line ({\"case\": id, \"events\": [...]})");
      }
      if (!line["case"].is_number_unsigned() || line["case"].get<CaseId>() == 0) {
        throw Error(ErrorCode::invalid_input, fmt::format("case id {} is not a whole number from 1", line["case"].dump()));
      }
      id = line["case"].get<CaseId>();
      std::vector<Event> events;
      events.reserve(line["events"].size());
      for (const auto& e : line["events"]) events.push_back(event_of(e, id));
      engine.import_case(events);
      ++report.imported;
    } catch (const std::exception& e) {
      ++report.refused;
      report.problems.push_back(id == 0 ? fmt::format("line {}: {}", line_no, e.what())
                                        : fmt::format("line {}: case {}: {}", line_no, id, e.what()));
    }
  }
  if (announced && *announced != case_lines) {
    report.problems.push_back(fmt::format("the header (line 1) says the archive holds {} case{}, but {} line{} of cases "
                                          "follow{}; {}",
                                          *announced, *announced == 1 ? "" : "s", case_lines, case_lines == 1 ? "" : "s",
                                          case_lines == 1 ? "s" : "",
                                          case_lines < *announced ? "it was cut short, or lines are missing"
                                                                  : "lines were added"));
  }
  return report;
}

}  // namespace onestop
