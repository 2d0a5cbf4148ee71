#pragma once

// A portable archive of cases: moves cases between stores (SQLite to
// PostgreSQL, one department's database to another, backups) with their
// history and hash chain intact. The format is JSON Lines, one case per
// line after a header line; it depends on no store, build or platform:
//
//   {"format":"onestop-archive","version":1,"cases":2}
//   {"case":17,"events":[{"seq":1,"at":"2026-03-02T01:00:00Z","actor":"...",
//     "kind":"submitted","task":0,"node":"","from":"","to":"running",
//     "payload":"{...}","prev_hash":"00..","hash":"9f.."}, ...]}
//
// Importing rebuilds each case's state by replaying its inputs on the
// importing engine's catalog, so that catalog must hold the definition
// versions the cases ran on.

#include <onestop/engine.hpp>
#include <onestop/store.hpp>

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace onestop {

// Writes the given cases (every case in the store when `ids` is empty) from
// `store`; returns how many were written. An id given twice is written
// once, where it first appears. Throws Error(not_found) for an id the store
// does not have, before anything is written.
std::size_t export_cases(Store& store, std::ostream& out, const std::vector<CaseId>& ids = {});

// What import_cases did.
struct ImportReport {
  std::size_t imported = 0;
  std::size_t refused = 0;  // case lines not imported
  // One per case not imported ("line N: case M: why"), and one when the
  // number of case lines is not the header's "cases".
  std::vector<std::string> problems;
  bool ok() const noexcept { return problems.empty(); }
};

// Reads an archive and imports every case through Engine::import_case (hash
// chain checked, state rebuilt by replay, committed under its own id). A
// case that fails is reported and skipped; the others are imported. An
// archive holding fewer or more case lines than its header says is a
// problem too, reported after the sound cases are imported. Throws
// Error(invalid_input) when the input is not an archive at all.
ImportReport import_cases(Engine& engine, std::istream& in);

// One event as a line of JSON (the archive's event format), and back.
std::string event_to_json(const Event& event);
// Throws Error(invalid_input) naming the field that is missing or wrong.
Event event_from_json(const std::string& json, CaseId case_id);

}  // namespace onestop
