#pragma once

// The names an application offers to expressions (guards and required_if):
// form fields and the applicant's kind, id, name, age and region. One
// definition for pre-review and for the flow's guards.

#include <onestop/case.hpp>
#include <onestop/expr.hpp>
#include <onestop/model.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace onestop::core {

// Materials a resubmission offers, into those the application holds: one
// with an id already there replaces it, any other is added. One definition
// for the state machine and the engine's pre-review of a resubmission.
void merge_materials(std::vector<OfferedMaterial>& into, const std::vector<OfferedMaterial>& given);

// How the items of an application (a theme's share one set of materials)
// list material `id`, and what suits all of them: pre-review checks a
// shared material against every item's definition. One reading for the
// simulator's applicants and the flow tests' `materials`.
struct MaterialListing {
  bool listed = false;    // some item lists it
  bool required = false;  // some item requires it outright (necessity: required)
  bool supplied = false;  // some item has it from the certificate library or shared data
  std::string file_type;  // one every item naming file types accepts, else the first named, else "pdf"
  MaterialForm form = MaterialForm::copy;  // the strictest: electronic or original and copy, else original, else copy
  std::int64_t max_bytes = 0;              // the smallest size limit; 0: none
};
MaterialListing material_listing(std::string_view id, const std::vector<const Item*>& items);

// "form.x", "applicant.kind|id|name|age|region"; null for anything else.
// age: whole years at `now` (on the Beijing date; with `beijing_age` false
// on the UTC date, as cases under the first engine rules read it), from the
// birth date in a resident ID number.
// region: the six-digit administrative division code in the resident ID
// number (digits 1-6) or the unified social credit code (characters 3-8).
Value application_field(std::string_view path, const std::map<std::string, Value>& form, const Applicant& applicant,
                        Instant now, bool beijing_age = true);

}  // namespace onestop::core
