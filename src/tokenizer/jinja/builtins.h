// Jinja's filters and tests, and Python's attributes and methods of the values
// a chat template sees, with jinja2's ImmutableSandboxedEnvironment semantics
// (methods that mutate a list or dict raise a security error) and
// transformers' tojson (ensure_ascii=False, indent, separators, sort_keys).
#pragma once

#include <string>

#include "tokenizer/jinja/value.h"

namespace tandem::jinja {

[[noreturn]] void throw_undefined(const Value& undefined);

// obj.name: a method bound to obj, else obj[name], else Undefined.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: an item, else a method named key, else Undefined.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on lists and strings (null parts are Values of kind Undefined).
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

Value apply_filter(const std::string& name, const Value& subject, const CallArgs& args);
bool apply_test(const std::string& name, const Value& subject, const CallArgs& args);

// Python's str.strip / str.split helpers shared with the methods.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);

}  // namespace tandem::jinja
