// A Plan as text (the table `tandem plan` prints, bytes in GB and GiB) and as
// JSON (`tandem plan --json`; the field list is in docs/memory.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "memory/planner.h"

namespace tandem::memory {

nlohmann::json plan_to_json(const Plan& plan);
std::string plan_to_table(const Plan& plan);

}  // namespace tandem::memory
