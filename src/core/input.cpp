#include "core/input.hpp"

#include "common/json_fields.hpp"
#include "common/utf8.hpp"
#include "core/recorded_enums.hpp"

#include <onestop/error.hpp>

#include <fmt/format.h>

#include <cmath>
#include <string_view>
#include <unordered_map>

namespace onestop::core {

namespace {

// Lists in a form value nest at most this deep: a recorded payload is read
// back at most json_fields::max_depth levels deep, and the value sits a few
// levels down in it (payload, form, field).
constexpr int max_list_depth = 32;
static_assert(max_list_depth + 4 < json_fields::max_depth);

// The problems below are said after the name of what has them ("comment",
// "form field 'x'"); they are worked out first and named only when found, so
// that a sound action costs a scan of its texts and no formatting.

// " is not UTF-8 text (...)", or "" when it is.
std::string text_problem(std::string_view text) {
  const std::size_t at = invalid_utf8_at(text);
  if (at == std::string_view::npos) return {};
  return fmt::format(" is not UTF-8 text (byte 0x{:02X} at offset {})", static_cast<unsigned char>(text[at]), at);
}

// A text as an error message may show it: JSON-quoted, anything outside
// printable ASCII escaped, a byte that is not UTF-8 as U+FFFD, cut short.
std::string shown_text(std::string_view text) { return json_fields::shown(nlohmann::json(std::string(text))); }

std::string value_problem(const Value& v, int depth) {
  switch (v.type()) {
    case Value::Type::null:
    case Value::Type::boolean: return {};
    case Value::Type::number:
      if (std::isfinite(v.as_number())) return {};
      return fmt::format(" is {}, not a finite number", v.as_number());
    case Value::Type::string: return text_problem(v.as_string());
    case Value::Type::list: {
      if (depth >= max_list_depth) return fmt::format(" nests lists deeper than {} levels", max_list_depth);
      const auto& list = v.as_list();
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (std::string p = value_problem(list[i], depth + 1); !p.empty()) return fmt::format("[{}]{}", i, p);
      }
      return {};
    }
  }
  return " is of no known type";
}

std::string form_problem(const std::map<std::string, Value>& form) {
  for (const auto& [key, value] : form) {
    if (std::string p = text_problem(key); !p.empty()) return fmt::format("form field name {}{}", shown_text(key), p);
    if (std::string p = value_problem(value, 0); !p.empty()) return fmt::format("form field '{}'{}", key, p);
  }
  return {};
}

template <class E>
bool recordable(E value) {
  return value <= last_of<E>;  // every recorded enum starts at 0
}

// "" when `value` is one the history records (0 .. last_of<E>); else
// "<what> <number> is not <noun>" and the range, its ends named by `name`.
template <class E, class Name>
std::string kind_problem(std::string_view what, E value, std::string_view noun, Name name) {
  if (recordable(value)) return {};
  return fmt::format("{} {} is not {} (0 {} .. {} {})", what, static_cast<int>(value), noun, name(E{}),
                     static_cast<int>(last_of<E>), name(last_of<E>));
}

std::string_view actor_kind_name(Actor::Kind k) {
  switch (k) {
    case Actor::Kind::staff: return "staff";
    case Actor::Kind::applicant: return "applicant";
    case Actor::Kind::supervisor: return "supervisor";
    case Actor::Kind::system: return "system";
  }
  return "?";
}

std::string_view time_unit_name(TimeUnit u) {
  switch (u) {
    case TimeUnit::working_days: return "working days";
    case TimeUnit::natural_days: return "natural days";
    case TimeUnit::working_hours: return "working hours";
    case TimeUnit::natural_hours: return "natural hours";
  }
  return "?";
}

// What is wrong with one material (its id, file name, size or form), or "".
std::string material_problem(const OfferedMaterial& m) {
  if (m.bytes >= 0 && recordable(m.form) &&
      invalid_utf8_at(m.id) == std::string_view::npos && invalid_utf8_at(m.file_name) == std::string_view::npos) {
    return {};
  }
  if (std::string p = text_problem(m.id); !p.empty()) return "id" + p;
  if (std::string p = text_problem(m.file_name); !p.empty()) return "file name" + p;
  if (m.bytes < 0) return fmt::format("size {} bytes is negative", m.bytes);
  return kind_problem("form", m.form, "a material form",
                      [](MaterialForm f) { return to_string(f); });
}

std::string materials_problem(const std::vector<OfferedMaterial>& materials) {
  // One copy per material: pre-review looks at one, and a resubmission
  // replaces one.
  std::unordered_map<std::string_view, std::size_t> first;
  for (std::size_t i = 0; i < materials.size(); ++i) {
    if (std::string p = material_problem(materials[i]); !p.empty()) {
      return fmt::format("material {} ({}): {}", i + 1, shown_text(materials[i].id), p);
    }
    if (const auto [at, fresh] = first.emplace(materials[i].id, i); !fresh) {
      return fmt::format("material {} ({}) is offered twice (also material {}); offer one copy of each", i + 1,
                         shown_text(materials[i].id), at->second + 1);
    }
  }
  return {};
}

std::string actor_problem(const Actor& a) {
  if (std::string p = kind_problem("kind", a.kind, "a kind of actor", actor_kind_name);
      !p.empty()) {
    return "actor " + p;
  }
  if (std::string p = text_problem(a.user); !p.empty()) return "actor's user" + p;
  for (std::size_t i = 0; i < a.roles.size(); ++i) {
    if (std::string p = text_problem(a.roles[i]); !p.empty()) return fmt::format("actor's role {}{}", i + 1, p);
  }
  for (std::size_t i = 0; i < a.departments.size(); ++i) {
    if (std::string p = text_problem(a.departments[i]); !p.empty()) return fmt::format("actor's department {}{}", i + 1, p);
  }
  return {};
}

// What is wrong with a limit (said after "limit": "'s unit 7 is not ...",
// " of -5 working days is not from 0 to 999999"), or "" when the text it is
// recorded as ("5 working days") reads back as itself.
std::string limit_problem(const TimeLimit& limit) {
  if (std::string p = kind_problem("'s unit", limit.unit, "a time unit", time_unit_name);
      !p.empty()) {
    return p;
  }
  if (limit.amount >= 0 && limit.amount <= max_written_limit_amount) return {};
  return fmt::format(" of {} {} is not from 0 to {}", limit.amount, time_unit_name(limit.unit), max_written_limit_amount);
}

[[noreturn]] void refuse(std::string message) { throw Error(ErrorCode::invalid_input, std::move(message)); }

}  // namespace

void check_submission(const Submission& s, const Actor& actor) {
  auto problem = [&]() -> std::string {
    if (std::string p = text_problem(s.target); !p.empty()) return "target" + p;
    if (std::string p = kind_problem("applicant kind", s.applicant.kind, "a kind of applicant",
                                     [](ApplicantKind k) { return to_string(k); });
        !p.empty()) {
      return p;
    }
    if (std::string p = text_problem(s.applicant.id); !p.empty()) return "applicant's ID number" + p;
    if (std::string p = text_problem(s.applicant.name); !p.empty()) return "applicant's name" + p;
    if (std::string p = form_problem(s.form); !p.empty()) return p;
    if (std::string p = materials_problem(s.materials); !p.empty()) return p;
    return actor_problem(actor);
  };
  if (std::string p = problem(); !p.empty()) refuse("submission: " + p);
}

void check_action(const Action& a) {
  auto problem = [&]() -> std::string {
    if (std::string p = kind_problem("kind", a.kind, "an action",
                                     [](ActionKind k) { return to_string(k); });
        !p.empty()) {
      return p;
    }
    if (std::string p = actor_problem(a.actor); !p.empty()) return p;
    if (std::string p = text_problem(a.target); !p.empty()) return "target" + p;
    if (std::string p = text_problem(a.comment); !p.empty()) return "comment" + p;
    if (a.limit) {
      if (std::string p = limit_problem(*a.limit); !p.empty()) return "limit" + p;
    }
    if (std::string p = form_problem(a.form); !p.empty()) return p;
    return materials_problem(a.materials);
  };
  if (std::string p = problem(); !p.empty()) {
    refuse(fmt::format("{} on case {}: {}", recordable(a.kind) ? to_string(a.kind) : "action",
                       a.case_id, p));
  }
}

void check_fetched_material(const OfferedMaterial& m) {
  if (std::string p = material_problem(m); !p.empty()) {
    refuse(fmt::format("the certificate library's material {}: {}", shown_text(m.id), p));
  }
}

void check_follow_up_limit(const TimeLimit& limit) {
  if (std::string p = limit_problem(limit); !p.empty()) refuse("open_engine: follow_up_limit" + p);
}

std::string step_result_problem(const StepResult& r) {
  if (std::string p = kind_problem("decision", r.decision, "a decision",
                                   [](Decision d) { return to_string(d); });
      !p.empty()) {
    return p;
  }
  if (std::string p = text_problem(r.message); !p.empty()) return "message" + p;
  return form_problem(r.form);
}

}  // namespace onestop::core
