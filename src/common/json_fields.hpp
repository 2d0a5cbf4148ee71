#pragma once

// Reading fields of JSON that came from outside this process: event
// payloads in a store or an archive, archive lines. A field of the wrong
// type or out of range is refused by name with Error(invalid_input), never
// converted: nlohmann's get<int>() of a float out of range is undefined
// behaviour, of a large unsigned a silent truncation, and its type_error
// names no field.

#include <onestop/error.hpp>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace onestop::json_fields {

using json = nlohmann::json;

// A value as an error message shows it: never a list or object written out
// (dump() recurses once per level: deep nesting would overflow the stack);
// a scalar in ASCII and cut at 40 characters (cutting splits no character).
inline std::string shown(const json& value) {
  std::string out = value.is_array()    ? std::string("a list")
                    : value.is_object() ? std::string("an object")
                                        : value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (out.size() > 40) out = out.substr(0, 37) + "...";
  return out;
}

[[noreturn]] inline void bad_field(std::string_view key, const json& value, std::string_view wanted) {
  throw Error(ErrorCode::invalid_input, fmt::format("'{}' is {}, not {}", key, shown(value), wanted));
}

// The field, nullptr when absent; `j` must be an object.
inline const json* field(const json& j, const char* key) {
  if (!j.is_object()) bad_field("(the payload)", j, "an object");
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// `v` (the field `key`) as a T, when it is a whole number T holds.
template <class T>
T whole_value(const json& v, std::string_view key) {
  if (v.is_number_unsigned()) {
    if (const auto n = v.get<std::uint64_t>(); std::in_range<T>(n)) return static_cast<T>(n);
  } else if (v.is_number_integer()) {
    if (const auto n = v.get<std::int64_t>(); std::in_range<T>(n)) return static_cast<T>(n);
  }
  bad_field(key, v, fmt::format("a whole number from {} to {}", +std::numeric_limits<T>::min(),
                                +std::numeric_limits<T>::max()));
}

template <class T>
T whole(const json& j, const char* key, T fallback) {
  const json* v = field(j, key);
  return v ? whole_value<T>(*v, key) : fallback;
}

// An enum written as its number, `last` its highest value.
template <class E>
E kind_of(const json& j, const char* key, E fallback, E last) {
  using U = std::underlying_type_t<E>;
  const json* v = field(j, key);
  if (!v) return fallback;
  const U n = whole_value<U>(*v, key);
  if (n > static_cast<U>(last)) bad_field(key, *v, fmt::format("a kind from 0 to {}", +static_cast<U>(last)));
  return static_cast<E>(n);
}

inline std::string text_value(const json& v, std::string_view key) {
  if (!v.is_string()) bad_field(key, v, "a text");
  return v.get<std::string>();
}

inline std::string text_of(const json& j, const char* key) {
  const json* v = field(j, key);
  return v ? text_value(*v, key) : std::string();
}

inline bool flag_of(const json& j, const char* key, bool fallback) {
  const json* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) bad_field(key, *v, "true or false");
  return v->get<bool>();
}

inline std::vector<std::string> texts_of(const json& j, const char* key) {
  const json* v = field(j, key);
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->is_array()) bad_field(key, *v, "a list of texts");
  for (const json& x : *v) out.push_back(text_value(x, key));
  return out;
}

// An object or list field: nullptr when absent, refused when of another type.
inline const json* object_if_any(const json& j, const char* key) {
  const json* v = field(j, key);
  if (v && !v->is_object()) bad_field(key, *v, "an object");
  return v;
}

inline const json* list_if_any(const json& j, const char* key) {
  const json* v = field(j, key);
  if (v && !v->is_array()) bad_field(key, *v, "a list");
  return v;
}

// The same, required.
inline const json& object_of(const json& j, const char* key) {
  if (const json* v = object_if_any(j, key)) return *v;
  throw Error(ErrorCode::invalid_input, fmt::format("'{}' is missing", key));
}

inline const json& list_of(const json& j, const char* key) {
  if (const json* v = list_if_any(j, key)) return *v;
  throw Error(ErrorCode::invalid_input, fmt::format("'{}' is missing", key));
}

// Deeper than anything this engine writes (an archive line: 4 levels; a
// form value: a list of lists at most): readers that walk a value
// recursively stay far from the stack's end.
constexpr int max_depth = 64;

// JSON text nested at most max_depth levels, or Error(invalid_input) saying
// what it was meant to be.
inline json parse(std::string_view text, std::string_view what) {
  try {
    return json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > max_depth) {
        throw Error(ErrorCode::invalid_input, fmt::format("{} nests deeper than {} levels", what, max_depth));
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw Error(ErrorCode::invalid_input, fmt::format("{} is not JSON ({})", what, e.what()));
  }
}

}  // namespace onestop::json_fields
