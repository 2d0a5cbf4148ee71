#pragma once

// The umbrella header: everything a host needs.

#include <onestop/version.hpp>
#include <onestop/error.hpp>
#include <onestop/expr.hpp>
#include <onestop/model.hpp>
#include <onestop/definitions.hpp>
#include <onestop/identity.hpp>
#include <onestop/calendar.hpp>
#include <onestop/clock.hpp>
#include <onestop/case.hpp>
#include <onestop/store.hpp>
#include <onestop/engine.hpp>
#include <onestop/archive.hpp>
#include <onestop/flowtest.hpp>
#include <onestop/sqlite_store.hpp>
