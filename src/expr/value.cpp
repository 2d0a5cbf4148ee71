#include <fmt/format.h>

#include <onestop/error.hpp>
#include <onestop/expr.hpp>

namespace onestop {

namespace {

[[noreturn]] void throw_type_mismatch(std::string_view wanted, const Value& got) {
  throw Error(ErrorCode::invalid_input, fmt::format("expected {}, got {} {}", wanted,
                                                    to_string(got.type()), got.to_string()));
}

void append_quoted(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // Other control bytes would garble a log line; the language has no
        // escape for them, so they are shown in hex for the reader only.
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_rendering(std::string& out, const Value& value) {
  switch (value.type()) {
    case Value::Type::null:
      out += "null";
      break;
    case Value::Type::boolean:
      out += value.as_bool() ? "true" : "false";
      break;
    case Value::Type::number:
      out += fmt::format("{}", value.as_number());
      break;
    case Value::Type::string:
      append_quoted(out, value.as_string());
      break;
    case Value::Type::list: {
      out += '[';
      bool first = true;
      for (const Value& item : value.as_list()) {
        if (!first) out += ", ";
        first = false;
        append_rendering(out, item);
      }
      out += ']';
      break;
    }
  }
}

}  // namespace

bool Value::as_bool() const {
  if (const bool* b = std::get_if<bool>(&v_)) return *b;
  throw_type_mismatch("a bool", *this);
}

double Value::as_number() const {
  if (const double* d = std::get_if<double>(&v_)) return *d;
  throw_type_mismatch("a number", *this);
}

const std::string& Value::as_string() const {
  if (const std::string* s = std::get_if<std::string>(&v_)) return *s;
  throw_type_mismatch("a string", *this);
}

const Value::List& Value::as_list() const {
  if (const List* l = std::get_if<List>(&v_)) return *l;
  throw_type_mismatch("a list", *this);
}

bool Value::truthy() const noexcept {
  switch (type()) {
    case Type::null:
      return false;
    case Type::boolean:
      return *std::get_if<bool>(&v_);
    case Type::number:
      return *std::get_if<double>(&v_) != 0.0;
    case Type::string:
      return !std::get_if<std::string>(&v_)->empty();
    case Type::list:
      return !std::get_if<List>(&v_)->empty();
  }
  return false;
}

std::string Value::to_string() const {
  std::string out;
  append_rendering(out, *this);
  return out;
}

std::string_view to_string(Value::Type type) noexcept {
  switch (type) {
    case Value::Type::null:
      return "null";
    case Value::Type::boolean:
      return "bool";
    case Value::Type::number:
      return "number";
    case Value::Type::string:
      return "string";
    case Value::Type::list:
      return "list";
  }
  return "unknown";
}

}  // namespace onestop
