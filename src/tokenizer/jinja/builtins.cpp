// Jinja filters and tests.
#include "tokenizer/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "tokenizer/jinja/parser.h"

namespace tandem::jinja {
namespace {

const std::set<std::string> kFilters = {
    "abs",     "attr",   "capitalize", "count",  "d",          "default", "dictsort", "e",       "escape",
    "first",   "float",  "indent",     "int",    "items",      "join",    "last",     "length",  "list",
    "lower",   "map",    "max",        "min",    "reject",     "rejectattr", "replace", "reverse", "safe",
    "select",  "selectattr", "sort",   "string", "sum",        "title",   "tojson",   "trim",    "unique",
    "upper",   "wordcount", "center",  "format"};
const std::set<std::string> kJinja2Filters = {
    "abs",    "attr",     "batch",    "capitalize", "center",   "count",      "d",       "default", "dictsort",
    "e",      "escape",   "filesizeformat", "first", "float",   "forceescape", "format", "groupby", "indent",
    "int",    "items",    "join",     "last",       "length",   "list",       "lower",   "map",     "max",
    "min",    "pprint",   "random",   "reject",     "rejectattr", "replace",  "reverse", "round",   "safe",
    "select", "selectattr", "slice",  "sort",       "string",   "striptags",  "sum",     "title",   "tojson",
    "trim",   "truncate", "unique",   "upper",      "urlencode", "urlize",    "wordcount", "wordwrap", "xmlattr"};
const std::set<std::string> kTests = {
    "defined", "undefined", "none",    "boolean", "false",  "true",   "integer",  "float",  "number",
    "string",  "mapping",   "iterable", "sequence", "callable", "sameas", "escaped", "in",    "lower",
    "upper",   "odd",       "even",    "divisibleby", "==",  "eq",     "equalto",  "!=",     "ne",
    "<",       "lt",        "lessthan", "<=",     "le",     ">",      "gt",       "greaterthan", ">=", "ge",
    "filter",  "test"};

std::string lower(const std::string& s) { return change_case(s, CaseOp::kLower); }

Value arg_or(const CallArgs& a, size_t i, const char* name, const Value& dflt) {
  const Value* v = a.get(i, name);
  return v ? *v : dflt;
}

// environment.getitem over a dotted path ("a.b", "items.0").
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = get_item(cur, numeric ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// A sort key: case-folded strings unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(lower(v.str()));
  return v;
}

List to_list(const Value& v) { return v.iterate(); }

Value select_like(const Value& seq, const CallArgs& a, bool by_attr, bool select) {
  // selectattr(attr, test, args...) / select(test, args...)
  size_t first = by_attr ? 1 : 0;
  std::string attr;
  if (by_attr) {
    const Value* at = a.get(0, "attribute");
    if (!at || !at->is_string()) throw_type_error("selectattr/rejectattr need an attribute name");
    attr = at->str();
  }
  std::string test;
  CallArgs test_args;
  if (a.positional.size() > first) {
    test = a.positional[first].to_str();
    test_args.positional.assign(a.positional.begin() + static_cast<long>(first) + 1, a.positional.end());
  }
  List out;
  if (!seq.truthy()) return Value::generator({});  // jinja: `if seq:` before iterating
  for (const Value& item : to_list(seq)) {
    Value subject = by_attr ? attribute_path(item, attr) : item;
    bool ok = test.empty() ? subject.truthy() : apply_test(test, subject, test_args);
    if (ok == select) out.push_back(item);
  }
  return Value::generator(std::move(out));
}

Value to_int(const Value& v, const Value& dflt, int base) {
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) return Value::integer(static_cast<int64_t>(v.as_double()));
  if (v.is_string()) {
    std::string s = py_strip(v.str(), nullptr, true, true);
    try {
      size_t used = 0;
      long long n = std::stoll(s, &used, base);
      if (used == s.size()) return Value::integer(n);
    } catch (const std::exception&) {
    }
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size() && std::isfinite(d)) return Value::integer(static_cast<int64_t>(d));
    } catch (const std::exception&) {
    }
  }
  return dflt;
}

std::string indent(const std::string& s_in, const Value& width, bool first, bool blank) {
  std::string pad = width.is_string() ? width.str() : std::string(static_cast<size_t>(std::max<int64_t>(0, width.as_int())), ' ');
  std::string s = s_in + "\n";
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' || c == '\x1e') {
      lines.push_back(cur);
      cur.clear();
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + pad : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : pad + lines[i]);
  }
  return first ? pad + rv : rv;
}

Value min_max(const Value& seq, const CallArgs& a, bool want_max) {
  bool cs = arg_or(a, 0, "case_sensitive", Value::boolean(false)).truthy();
  const Value* attr = a.get(1, "attribute");
  List items = to_list(seq);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  auto key = [&](size_t i) { return sort_key(attr ? attribute_path(items[i], attr->to_str()) : items[i], cs); };
  for (size_t i = 1; i < items.size(); ++i) {
    int c = compare_values(key(i), key(best));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

}  // namespace

bool filter_supported(const std::string& name) { return kFilters.count(name) > 0; }
bool test_supported(const std::string& name) { return kTests.count(name) > 0; }
bool jinja2_knows_filter(const std::string& name) { return kJinja2Filters.count(name) > 0; }
bool jinja2_knows_test(const std::string& name) {
  return kTests.count(name) > 0;  // this interpreter implements every jinja2 test
}

Value apply_filter(const std::string& name, const Value& v, const CallArgs& a) {
  if (!filter_supported(name)) {
    throw RenderError(RenderError::Kind::kRuntime, "No filter named '" + name + "' found.");
  }
  const Value kFalse = Value::boolean(false);
  if (name == "default" || name == "d") {
    const Value& dflt = arg_or(a, 0, "default_value", Value::string(""));
    bool boolean = arg_or(a, 1, "boolean", kFalse).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return dflt;
    return v;
  }
  if (name == "length" || name == "count") return Value::integer(v.length());
  if (name == "string") return v.is_string() ? v : Value::string(v.to_str());
  if (name == "safe") return Value::string(v.to_str(), /*markup=*/true);
  if (name == "escape" || name == "e") return v.is_markup() ? v : Value::string(html_escape(v.to_str()), true);
  if (name == "trim") return Value::string(py_strip(v.to_str(), a.get(0, "chars"), true, true));
  if (name == "upper") return Value::string(change_case(v.to_str(), CaseOp::kUpper));
  if (name == "lower") return Value::string(change_case(v.to_str(), CaseOp::kLower));
  if (name == "capitalize") return Value::string(change_case(v.to_str(), CaseOp::kCapitalize));
  if (name == "title") return Value::string(change_case(v.to_str(), CaseOp::kJinjaTitle));
  if (name == "tojson") {
    JsonDumpOptions o;
    o.ensure_ascii = arg_or(a, 0, "ensure_ascii", kFalse).truthy();
    const Value& ind = arg_or(a, 1, "indent", Value::none());
    if (!ind.is_none()) o.indent = static_cast<int>(ind.as_int());
    const Value& seps = arg_or(a, 2, "separators", Value::none());
    if (seps.is_list() && seps.items().size() == 2) {
      o.item_separator = seps.items()[0].to_str();
      o.key_separator = seps.items()[1].to_str();
    }
    o.sort_keys = arg_or(a, 3, "sort_keys", kFalse).truthy();
    return Value::string(json_dumps(v, o));
  }
  if (name == "int") {
    const Value& base = arg_or(a, 1, "base", Value::integer(10));
    return to_int(v, arg_or(a, 0, "default", Value::integer(0)), static_cast<int>(base.as_int()));
  }
  if (name == "float") {
    if (v.is_number()) return Value::floating(v.as_double());
    if (v.is_string()) {
      try {
        size_t used = 0;
        std::string s = py_strip(v.str(), nullptr, true, true);
        double d = std::stod(s, &used);
        if (used == s.size()) return Value::floating(d);
      } catch (const std::exception&) {
      }
    }
    return arg_or(a, 0, "default", Value::floating(0.0));
  }
  if (name == "abs") {
    if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
    if (v.is_number()) return Value::integer(std::llabs(v.as_int()));
    throw_type_error("bad operand type for abs(): '" + v.type_name() + "'");
  }
  if (name == "list") return Value::list(to_list(v));
  if (name == "first") {
    List items = to_list(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  if (name == "last") {
    if (v.is_generator()) throw_type_error("'generator' object is not reversible");
    List items = to_list(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto chars = utf8_chars(v.str());
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
      return Value::string(out);
    }
    // Python's reversed() is a lazy iterator, except over a generator (a list then).
    bool lazy = !v.is_generator();
    List items = to_list(v);
    std::reverse(items.begin(), items.end());
    return lazy ? Value::generator(std::move(items)) : Value::list(std::move(items));
  }
  if (name == "join") {
    std::string sep = arg_or(a, 0, "d", Value::string("")).to_str();
    const Value* attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : to_list(v)) {
      if (!first) out += sep;
      out += (attr ? attribute_path(item, attr->to_str()) : item).to_str();
      first = false;
    }
    return Value::string(out);
  }
  if (name == "replace") {
    std::string s = v.to_str(), from = arg_or(a, 0, "old", Value::string("")).to_str();
    std::string to = arg_or(a, 1, "new", Value::string("")).to_str();
    const Value& count = arg_or(a, 2, "count", Value::none());
    CallArgs m;
    m.positional = {Value::string(from), Value::string(to)};
    if (!count.is_none()) m.positional.push_back(count);
    return get_attribute(Value::string(s), "replace").fn().call(m);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::list();
    if (!v.is_dict()) throw_type_error("Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, val] : v.entries()) out.push_back(Value::tuple({k, val}));
    return Value::generator(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) throw_type_error("dictsort expects a mapping");
    bool cs = arg_or(a, 0, "case_sensitive", kFalse).truthy();
    std::string by = arg_or(a, 1, "by", Value::string("key")).to_str();
    bool reverse = arg_or(a, 2, "reverse", kFalse).truthy();
    List out;
    for (const auto& [k, val] : v.entries()) out.push_back(Value::tuple({k, val}));
    size_t pos = by == "value" ? 1 : 0;
    std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
      int c = compare_values(sort_key(x.items()[pos], cs), sort_key(y.items()[pos], cs));
      return reverse ? c > 0 : c < 0;
    });
    return Value::list(std::move(out));
  }
  if (name == "sort") {
    bool reverse = arg_or(a, 0, "reverse", kFalse).truthy();
    bool cs = arg_or(a, 1, "case_sensitive", kFalse).truthy();
    const Value* attr = a.get(2, "attribute");
    List items = to_list(v);
    auto key = [&](const Value& x) { return sort_key(attr ? attribute_path(x, attr->to_str()) : x, cs); };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      int c = compare_values(key(x), key(y));
      return reverse ? c > 0 : c < 0;
    });
    return Value::list(std::move(items));
  }
  if (name == "unique") {
    bool cs = arg_or(a, 0, "case_sensitive", kFalse).truthy();
    const Value* attr = a.get(1, "attribute");
    List out, seen;
    for (const Value& item : to_list(v)) {
      Value k = sort_key(attr ? attribute_path(item, attr->to_str()) : item, cs);
      bool dup = std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, k); });
      if (!dup) {
        seen.push_back(k);
        out.push_back(item);
      }
    }
    return Value::generator(std::move(out));
  }
  if (name == "min" || name == "max") return min_max(v, a, name == "max");
  if (name == "sum") {
    const Value* attr = a.get(0, "attribute");
    Value total = arg_or(a, 1, "start", Value::integer(0));
    for (const Value& item : to_list(v)) total = python_add(total, attr ? attribute_path(item, attr->to_str()) : item);
    return total;
  }
  if (name == "map") {
    List out;
    if (!v.truthy()) return Value::generator({});  // jinja: `if seq:` before iterating
    const Value* attr = nullptr;
    for (const auto& [k, val] : a.keyword) {
      if (k == "attribute") attr = &val;
    }
    if (attr) {
      const Value* dflt = nullptr;
      for (const auto& [k, val] : a.keyword) {
        if (k == "default") dflt = &val;
      }
      for (const Value& item : to_list(v)) {
        Value x = attribute_path(item, attr->to_str());
        out.push_back(x.is_undefined() && dflt ? *dflt : x);
      }
      return Value::generator(std::move(out));
    }
    if (a.positional.empty()) throw_type_error("map requires a filter argument");
    std::string f = a.positional[0].to_str();
    if (!filter_supported(f)) throw RenderError(RenderError::Kind::kRuntime, "No filter named '" + f + "' found.");
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    for (const Value& item : to_list(v)) out.push_back(apply_filter(f, item, rest));
    return Value::generator(std::move(out));
  }
  if (name == "select" || name == "reject") return select_like(v, a, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") return select_like(v, a, true, name == "selectattr");
  if (name == "attr") {
    // getattr() only: a dict's keys are not attributes here.
    std::string attr = arg_or(a, 0, "name", Value::string("")).to_str();
    if (v.is_dict() && !(attr == "get" || attr == "items" || attr == "keys" || attr == "values")) {
      return Value::undefined("'dict object' has no attribute '" + attr + "'");
    }
    return get_attribute(v, attr);
  }
  if (name == "indent") {
    return Value::string(indent(v.to_str(), arg_or(a, 0, "width", Value::integer(4)),
                                arg_or(a, 1, "first", kFalse).truthy(), arg_or(a, 2, "blank", kFalse).truthy()));
  }
  if (name == "wordcount") {
    CallArgs none;
    return Value::integer(static_cast<int64_t>(get_attribute(Value::string(v.to_str()), "split").fn().call(none).items().size()));
  }
  if (name == "center") {
    int64_t width = arg_or(a, 0, "width", Value::integer(80)).as_int();
    std::string s = v.to_str();
    int64_t n = static_cast<int64_t>(utf8_chars(s).size());
    if (n >= width) return Value::string(s);
    int64_t pad = width - n, left = pad / 2 + (pad & width & 1);
    return Value::string(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
  }
  if (name == "format") {
    // printf-style "%s" formatting: only %s, %d and %%.
    std::string fmt = v.to_str(), out;
    size_t k = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
      if (fmt[i] != '%' || i + 1 == fmt.size()) {
        out += fmt[i];
        continue;
      }
      char c = fmt[++i];
      if (c == '%') out += '%';
      else if ((c == 's' || c == 'd') && k < a.positional.size()) out += a.positional[k++].to_str();
      else throw RenderError(RenderError::Kind::kRuntime, std::string("format: '%") + c + "' is not supported");
    }
    return Value::string(out);
  }
  throw RenderError(RenderError::Kind::kRuntime, "filter '" + name + "' is not implemented");
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& a) {
  if (!test_supported(name)) throw RenderError(RenderError::Kind::kRuntime, "No test named '" + name + "' found.");
  const Value* arg = a.get(0, "other");
  auto need = [&]() -> const Value& {
    if (!arg) throw_type_error("test '" + name + "' needs an argument");
    return *arg;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return (v.is_list() && !v.is_generator()) || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "callable") return v.is_function();
  if (name == "escaped") return v.is_markup();
  if (name == "lower" || name == "upper") return v.is_string() && has_only_case(v.str(), name == "upper");
  if (name == "odd" || name == "even") {
    if (!v.is_int() && !v.is_bool()) throw_type_error("odd/even need an integer");
    int64_t r = ((v.as_int() % 2) + 2) % 2;
    return name == "odd" ? r == 1 : r == 0;
  }
  if (name == "divisibleby") {
    int64_t d = need().as_int();
    if (d == 0) throw RenderError(RenderError::Kind::kRuntime, "ZeroDivisionError: integer modulo by zero");
    return v.as_int() % d == 0;
  }
  if (name == "sameas") {
    const Value& o = need();
    if (v.kind() != o.kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.is_bool() || v.is_int()) return v.as_int() == o.as_int();
    if (v.is_list()) return &v.items() == &o.items();
    if (v.is_dict() || v.is_namespace()) return &v.entries() == &o.entries();
    return values_equal(v, o);
  }
  if (name == "in") {
    const Value& o = need();
    if (o.is_string()) return v.is_string() && o.str().find(v.str()) != std::string::npos;
    if (o.is_dict()) return o.find(v) != nullptr;
    for (const Value& x : o.iterate()) {
      if (values_equal(x, v)) return true;
    }
    return false;
  }
  if (name == "==" || name == "eq" || name == "equalto") return values_equal(v, need());
  if (name == "!=" || name == "ne") return !values_equal(v, need());
  int c = 0;
  if (name == "<" || name == "lt" || name == "lessthan") return (c = compare_values(v, need())) < 0;
  if (name == "<=" || name == "le") return compare_values(v, need()) <= 0;
  if (name == ">" || name == "gt" || name == "greaterthan") return compare_values(v, need()) > 0;
  if (name == ">=" || name == "ge") return compare_values(v, need()) >= 0;
  if (name == "filter") return v.is_string() && filter_supported(v.str());
  if (name == "test") return v.is_string() && test_supported(v.str());
  throw RenderError(RenderError::Kind::kRuntime, "test '" + name + "' is not implemented");
}

}  // namespace tandem::jinja
