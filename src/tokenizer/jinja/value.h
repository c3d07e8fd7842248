// Values of the Jinja subset, with Python's semantics: the objects a chat
// template sees are what transformers hands jinja2 (dict, list, str, int,
// float, bool, None), plus Jinja's Undefined, namespace() objects, callables
// (macros, builtins, bound methods) and Markup strings (the `safe` filter).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::jinja {

// Internal error raised while rendering; ChatTemplate::render turns it into a
// Status. kRaise comes from the template's own raise_exception(msg).
class RenderError : public std::runtime_error {
 public:
  enum class Kind { kRaise, kType, kUndefined, kSecurity, kRuntime };
  RenderError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

[[noreturn]] void throw_type_error(const std::string& message);

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<Value, Value>>;  // insertion-ordered, as Python's dict

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // Keyword `name`, else positional `index`, else nullptr.
  const Value* get(size_t index, std::string_view name) const;
};

struct Function {
  std::string name;
  std::function<Value(const CallArgs&)> call;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

  Value() = default;  // Undefined
  static Value undefined(std::string hint = "") {
    Value v;
    v.str_ = std::make_shared<const std::string>(std::move(hint));
    return v;
  }
  static Value none() { return make(Kind::kNone); }
  static Value boolean(bool b) {
    Value v = make(Kind::kBool);
    v.int_ = b;
    return v;
  }
  static Value integer(int64_t i) {
    Value v = make(Kind::kInt);
    v.int_ = i;
    return v;
  }
  static Value floating(double f) {
    Value v = make(Kind::kFloat);
    v.float_ = f;
    return v;
  }
  static Value string(std::string s, bool markup = false) {
    Value v = make(Kind::kString);
    v.str_ = std::make_shared<const std::string>(std::move(s));
    v.markup_ = markup;
    return v;
  }
  static Value list(List items = {}) {
    Value v = make(Kind::kList);
    v.list_ = std::make_shared<List>(std::move(items));
    return v;
  }
  // What jinja's select/map/... filters return: a lazy generator in Python,
  // iterable once, always truthy, with no len() and no JSON form.
  static Value generator(List items) {
    Value v = list(std::move(items));
    v.generator_ = true;
    return v;
  }
  // A Python tuple: a list that prints as (a, b) and never equals a list.
  static Value tuple(List items) {
    Value v = list(std::move(items));
    v.tuple_ = true;
    return v;
  }
  static Value dict(Dict items = {}) {
    Value v = make(Kind::kDict);
    v.dict_ = std::make_shared<Dict>(std::move(items));
    return v;
  }
  static Value make_namespace(Dict items = {}) {
    Value v = dict(std::move(items));
    v.kind_ = Kind::kNamespace;
    return v;
  }
  static Value function(std::string name, std::function<Value(const CallArgs&)> fn) {
    Value v = make(Kind::kFunction);
    v.fn_ = std::make_shared<Function>(Function{std::move(name), std::move(fn)});
    return v;
  }
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }
  bool is_markup() const { return kind_ == Kind::kString && markup_; }
  bool is_generator() const { return kind_ == Kind::kList && generator_; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }  // also for bool
  double as_double() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(int_); }
  // kString: the text; Undefined: the error hint ("'x' is undefined"), maybe empty.
  const std::string& str() const {
    static const std::string kEmpty;
    return str_ ? *str_ : kEmpty;
  }
  const List& items() const { return *list_; }
  List& mutable_items() const { return *list_; }
  const Dict& entries() const { return *dict_; }
  Dict& mutable_entries() const { return *dict_; }
  const Function& fn() const { return *fn_; }

  // Dict lookup by key (Python equality); nullptr when absent.
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(const Value& key, Value value) const;  // dicts and namespaces

  bool truthy() const;
  // Python's str() / repr() of the value (Undefined prints as "").
  std::string to_str() const;
  std::string repr() const;
  // Python's len(); throws for values without one.
  int64_t length() const;
  // The values `for` walks: list items, dict keys, string characters.
  List iterate() const;
  std::string type_name() const;  // Python's name: 'str', 'dict', 'NoneType', ...

 private:
  static Value make(Kind k) {
    Value v;
    v.kind_ = k;
    return v;
  }

  Kind kind_ = Kind::kUndefined;
  bool markup_ = false;
  bool generator_ = false;
  bool tuple_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> fn_;
};

// Python ==, and the ordering of < for sortable pairs (throws TypeError otherwise).
bool values_equal(const Value& a, const Value& b);
int compare_values(const Value& a, const Value& b);  // -1, 0, 1

// Python's a + b for numbers, str (Markup escapes the plain side), lists.
Value python_add(const Value& a, const Value& b);

// Python float repr: shortest round-trip, "1.0", "1e-05", "1e+20".
std::string python_float_repr(double f);

struct JsonDumpOptions {
  bool ensure_ascii = false;   // transformers' tojson default
  int indent = -1;             // -1: None (one line)
  std::string item_separator;  // empty: Python's default for the indent
  std::string key_separator;
  bool sort_keys = false;
};
// Python's json.dumps; throws TypeError for values JSON cannot hold.
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

// UTF-8 helpers: Python strings index by code point.
std::vector<std::string_view> utf8_chars(std::string_view s);
std::string html_escape(std::string_view s);  // markupsafe.escape

// Python's case mappings for ASCII, Latin-1, Latin Extended-A, Greek and
// Cyrillic (other scripts have no case or pass through unchanged).
enum class CaseOp { kUpper, kLower, kTitle, kCapitalize, kJinjaTitle };
std::string change_case(std::string_view s, CaseOp op);
// True when s has a cased character and none of the other case (str.isupper / islower).
bool has_only_case(std::string_view s, bool upper);

}  // namespace tandem::jinja
