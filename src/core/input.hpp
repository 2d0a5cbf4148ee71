#pragma once

// What a host hands the engine to record, checked before anything is
// stored: every enumerator in range, every text UTF-8, every number finite,
// lists nested no deeper than a recorded payload may be read back. A value
// that cannot be recorded exactly would be stored and then refused when the
// history is replayed, verified or imported.

#include <onestop/engine.hpp>

#include <string>

namespace onestop::core {

// Error(invalid_input) naming the field and what is wrong with it.
void check_submission(const Submission& s, const Actor& actor);
void check_action(const Action& a);
// EngineOptions::follow_up_limit, recorded with every evaluation.
void check_follow_up_limit(const TimeLimit& limit);
// A material the certificate library supplied (CertificateProvider::fetch).
void check_fetched_material(const OfferedMaterial& m);

// What is wrong with a handler's result, or "" when it can be recorded.
std::string step_result_problem(const StepResult& r);

}  // namespace onestop::core
