#pragma once

// The last enumerator of each enum a case's history records (each starts at
// 0): what replay reads back (codec.cpp) and what the engine checks before
// recording (input.cpp), kept in one place so that the two agree.

#include <onestop/case.hpp>
#include <onestop/engine.hpp>
#include <onestop/model.hpp>

namespace onestop::core {

constexpr ActionKind last_enumerator(ActionKind) { return ActionKind::rectify; }
constexpr Actor::Kind last_enumerator(Actor::Kind) { return Actor::Kind::system; }
constexpr ApplicantKind last_enumerator(ApplicantKind) { return ApplicantKind::other_organisation; }
constexpr MaterialForm last_enumerator(MaterialForm) { return MaterialForm::electronic; }
constexpr Decision last_enumerator(Decision) { return Decision::deemed_approved; }
constexpr TimeUnit last_enumerator(TimeUnit) { return TimeUnit::natural_hours; }

// last_of<E>: the last enumerator of recorded enum E.
template <class E>
inline constexpr E last_of = last_enumerator(E{});

}  // namespace onestop::core
