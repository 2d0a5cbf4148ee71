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
// list material `id`, and what an applicant offers for it: pre-review
// checks a material, offered or fetched, against every item that takes it
// from the applicant. One reading for the simulator's applicants and the
// flow tests' `materials`.
struct MaterialListing {
  bool listed = false;          // some item lists it
  bool from_applicant = false;  // some item takes it from the applicant
  bool required = false;        // some item that takes it from the applicant requires it outright
  // What suits every item that takes it from the applicant (none does:
  // every item listing it): a file type
  // each one naming types accepts (else the first named, else "pdf"), the
  // strictest form (electronic or original and copy, else original, else
  // copy), the smallest size limit (0: none).
  std::string file_type;
  MaterialForm form = MaterialForm::copy;
  std::int64_t max_bytes = 0;
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
