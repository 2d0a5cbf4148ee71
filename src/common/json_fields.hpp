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

[[noreturn]] inline void bad_field(std::string_view key, const json& value, std::string_view wanted) {
  std::string shown = value.dump();
  if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
  throw Error(ErrorCode::invalid_input, fmt::format("'{}' is {}, not {}", key, shown, wanted));
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

inline const json& object_of(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) throw Error(ErrorCode::invalid_input, fmt::format("'{}' is missing", key));
  if (!v->is_object()) bad_field(key, *v, "an object");
  return *v;
}

inline const json& list_of(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) throw Error(ErrorCode::invalid_input, fmt::format("'{}' is missing", key));
  if (!v->is_array()) bad_field(key, *v, "a list");
  return *v;
}

// JSON text, or Error(invalid_input) saying what it was meant to be.
inline json parse(std::string_view text, std::string_view what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::invalid_input, fmt::format("{} is not JSON ({})", what, e.what()));
  }
}

}  // namespace onestop::json_fields
