// Parser for the Jinja subset. Anything outside the subset (an unknown tag,
// a jinja2 filter or test this interpreter does not implement) is a parse
// error naming the construct, so a template never renders silently wrong.
// Filters and tests that jinja2 itself does not know (e.g. `from_json`) parse
// and fail only when reached, as they do in jinja2.
#pragma once

#include <string>

#include "common/status.h"
#include "tokenizer/jinja/ast.h"

namespace tandem::jinja {

StatusOr<Body> parse_template(const std::string& source);

// Names this interpreter implements; builtins.cpp is the one place that knows.
bool filter_supported(const std::string& name);
bool test_supported(const std::string& name);
bool jinja2_knows_filter(const std::string& name);
bool jinja2_knows_test(const std::string& name);

}  // namespace tandem::jinja
