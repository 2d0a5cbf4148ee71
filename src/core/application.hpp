#pragma once

// The names an application offers to expressions (guards and required_if):
// form fields and the applicant's kind, id, name, age and region. One
// definition for pre-review and for the flow's guards.

#include <onestop/case.hpp>
#include <onestop/expr.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace onestop::core {

// "form.x", "applicant.kind|id|name|age|region"; null for anything else.
// age: whole years at `now` (on the Beijing date; with `beijing_age` false
// on the UTC date, as cases under the first engine rules read it), from the
// birth date in a resident ID number.
// region: the six-digit administrative division code in the resident ID
// number (digits 1-6) or the unified social credit code (characters 3-8).
// Materials a resubmission offers, into those the application holds: one
// with an id already there replaces it, any other is added. One definition
// for the state machine and the engine's pre-review of a resubmission.
void merge_materials(std::vector<OfferedMaterial>& into, const std::vector<OfferedMaterial>& given);

Value application_field(std::string_view path, const std::map<std::string, Value>& form, const Applicant& applicant,
                        Instant now, bool beijing_age = true);

}  // namespace onestop::core
