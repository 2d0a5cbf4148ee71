#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace onestop {

// Stable error codes; the C API and the Python bindings map them one to one.
enum class ErrorCode : std::uint8_t {
  not_found = 1,
  not_permitted,
  conflict,
  invalid_state,
  invalid_input,
  storage,
  internal,
};

// The stable name of an error code ("not_found", "conflict", ...).
std::string_view to_string(ErrorCode code) noexcept;

// What every runtime failure throws: a stable code plus a message naming the
// case, task and actor involved.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// Where in a definition file something is; line and column are 1-based,
// 0 when unknown (for example a problem with a whole file).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

enum class Severity : std::uint8_t { error, warning, note };

std::string_view to_string(Severity severity) noexcept;

// One problem found while loading or checking definitions.
// Rendered as `file:line:col: error: [code] message (hint)`.
struct Diagnostic {
  Severity severity = Severity::error;
  SourceLocation where;
  std::string code;     // stable, kebab-case: "unknown-key", "deadlock", ...
  std::string message;  // says what and where, naming ids
  std::string hint;     // optional: "did you mean 'assignees'?"

  std::string to_string() const;
};

// Renders diagnostics as a JSON array (for `onestop validate --format json`).
std::string diagnostics_to_json(const std::vector<Diagnostic>& diagnostics);

// True when any diagnostic is an error.
bool has_errors(const std::vector<Diagnostic>& diagnostics) noexcept;

}  // namespace onestop
