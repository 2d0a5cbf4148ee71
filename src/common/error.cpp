#include <onestop/error.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace onestop {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::not_permitted: return "not_permitted";
    case ErrorCode::conflict: return "conflict";
    case ErrorCode::invalid_state: return "invalid_state";
    case ErrorCode::invalid_input: return "invalid_input";
    case ErrorCode::storage: return "storage";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

std::string_view to_string(Severity severity) noexcept {
  switch (severity) {
    case Severity::error: return "error";
    case Severity::warning: return "warning";
    case Severity::note: return "note";
  }
  return "error";
}

std::string Diagnostic::to_string() const {
  std::string out = where.file.empty() ? std::string("<input>") : where.file;
  if (where.line > 0) {
    out += fmt::format(":{}:{}", where.line, std::max(where.column, 1));
  }
  out += fmt::format(": {}: [{}] {}", onestop::to_string(severity), code, message);
  if (!hint.empty()) out += fmt::format(" ({})", hint);
  return out;
}

namespace {
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}
}  // namespace

std::string diagnostics_to_json(const std::vector<Diagnostic>& diagnostics) {
  std::string out = "[";
  bool first = true;
  for (const auto& d : diagnostics) {
    out += first ? "\n  {" : ",\n  {";
    first = false;
    out += "\"severity\": ";
    append_json_string(out, onestop::to_string(d.severity));
    out += ", \"file\": ";
    append_json_string(out, d.where.file);
    out += fmt::format(", \"line\": {}, \"column\": {}, \"code\": ", d.where.line, d.where.column);
    append_json_string(out, d.code);
    out += ", \"message\": ";
    append_json_string(out, d.message);
    if (!d.hint.empty()) {
      out += ", \"hint\": ";
      append_json_string(out, d.hint);
    }
    out += "}";
  }
  out += first ? "]\n" : "\n]\n";
  return out;
}

bool has_errors(const std::vector<Diagnostic>& diagnostics) noexcept {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::error; });
}

}  // namespace onestop
