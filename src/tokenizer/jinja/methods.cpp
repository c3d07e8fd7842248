// Attributes, items, slices and the Python methods of str, dict and list.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>

#include "tokenizer/jinja/builtins.h"

namespace tandem::jinja {
namespace {

uint32_t code_point(std::string_view ch) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(ch[i])); };
  if (ch.size() == 1) return b(0);
  if (ch.size() == 2) return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
  if (ch.size() == 3) return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
}

// Python's str.isspace() code points.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

std::string char_str(std::string_view ch) { return std::string(ch); }

const std::string& arg_str(const CallArgs& a, size_t i, const char* name, const char* method) {
  const Value* v = a.get(i, name);
  if (!v || !v->is_string()) throw_type_error(std::string(method) + "() argument must be str");
  return v->str();
}

Value split(const std::string& s, const Value* sep, const Value* maxsplit_v, bool from_right) {
  int64_t maxsplit = maxsplit_v && maxsplit_v->is_number() ? maxsplit_v->as_int() : -1;
  List parts;
  if (!sep || sep->is_none()) {
    // Whitespace split: runs of whitespace separate, no empty strings.
    auto chars = utf8_chars(s);
    std::vector<std::pair<size_t, size_t>> words;  // [begin, end) in chars
    size_t i = 0;
    while (i < chars.size()) {
      while (i < chars.size() && py_space(code_point(chars[i]))) ++i;
      if (i == chars.size()) break;
      size_t b = i;
      while (i < chars.size() && !py_space(code_point(chars[i]))) ++i;
      words.emplace_back(b, i);
    }
    auto join = [&](size_t b, size_t e) {
      std::string out;
      for (size_t k = b; k < e; ++k) out += chars[k];
      return out;
    };
    if (maxsplit < 0 || static_cast<size_t>(maxsplit) >= words.size()) {
      for (auto [b, e] : words) parts.push_back(Value::string(join(b, e)));
    } else if (!from_right) {
      for (int64_t k = 0; k < maxsplit; ++k) parts.push_back(Value::string(join(words[k].first, words[k].second)));
      // The remainder keeps its trailing whitespace but not its leading one.
      std::string rest = join(words[maxsplit].first, chars.size());
      parts.push_back(Value::string(rest));
    } else {
      size_t n = words.size(), first = n - static_cast<size_t>(maxsplit);
      parts.push_back(Value::string(join(0, words[first - 1].second)));
      std::string rest = parts.back().str();
      size_t lead = 0;
      for (auto ch : utf8_chars(rest)) {
        if (!py_space(code_point(ch))) break;
        lead += ch.size();
      }
      parts.back() = Value::string(rest.substr(lead));
      for (size_t k = first; k < n; ++k) parts.push_back(Value::string(join(words[k].first, words[k].second)));
    }
    return Value::list(std::move(parts));
  }
  if (!sep->is_string()) throw_type_error("must be str or None, not " + sep->type_name());
  const std::string& d = sep->str();
  if (d.empty()) throw RenderError(RenderError::Kind::kRuntime, "ValueError: empty separator");
  std::vector<std::string> out;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t p = s.find(d, start);
      if (p == std::string::npos) break;
      out.push_back(s.substr(start, p - start));
      start = p + d.size();
    }
    out.push_back(s.substr(start));
  } else {
    size_t end = s.size();
    std::vector<std::string> rev;
    while (maxsplit < 0 || static_cast<int64_t>(rev.size()) < maxsplit) {
      if (end < d.size()) break;
      size_t p = s.rfind(d, end - d.size());
      if (p == std::string::npos) break;
      rev.push_back(s.substr(p + d.size(), end - p - d.size()));
      end = p;
    }
    rev.push_back(s.substr(0, end));
    out.assign(rev.rbegin(), rev.rend());
  }
  for (auto& p : out) parts.push_back(Value::string(std::move(p)));
  return Value::list(std::move(parts));
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between every character (and at both ends).
    auto chars = utf8_chars(s);
    int64_t n = 0;
    for (auto ch : chars) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      out += ch;
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t start = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t p = s.find(from, start);
    if (p == std::string::npos) break;
    out += s.substr(start, p - start) + to;
    start = p + from.size();
    ++n;
  }
  return out + s.substr(start);
}

// str.format with {} / {0} / {name} fields and {{ }} escapes; format specs are refused.
std::string py_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t end = fmt.find('}', i);
      if (end == std::string::npos) throw RenderError(RenderError::Kind::kRuntime, "ValueError: single '{' in format string");
      std::string field = fmt.substr(i + 1, end - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos) {
        throw RenderError(RenderError::Kind::kRuntime, "str.format field '{" + field + "}' is not supported");
      }
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < a.positional.size() ? &a.positional[auto_index] : nullptr;
        ++auto_index;
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        size_t k = std::stoul(field);
        v = k < a.positional.size() ? &a.positional[k] : nullptr;
      } else {
        for (const auto& [k, val] : a.keyword) {
          if (k == field) v = &val;
        }
      }
      if (!v) throw RenderError(RenderError::Kind::kRuntime, "IndexError/KeyError in str.format: '{" + field + "}'");
      out += v->to_str();
      i = end;
    } else if (c == '}') {
      throw RenderError(RenderError::Kind::kRuntime, "ValueError: single '}' in format string");
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(const Value& self, const std::string& name, const CallArgs& a) {
  const std::string& s = self.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value::string(py_strip(s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") return split(s, a.get(0, "sep"), a.get(1, "maxsplit"), name == "rsplit");
  if (name == "upper") return Value::string(change_case(s, CaseOp::kUpper));
  if (name == "lower") return Value::string(change_case(s, CaseOp::kLower));
  if (name == "startswith" || name == "endswith") {
    const Value* p = a.get(0, "prefix");
    if (!p) throw_type_error(name + "() takes at least 1 argument (0 given)");
    List options = p->is_list() ? p->items() : List{*p};
    for (const Value& o : options) {
      if (!o.is_string()) throw_type_error(name + " first arg must be str or a tuple of str");
      const std::string& x = o.str();
      bool hit = name == "startswith" ? s.compare(0, x.size(), x) == 0
                                      : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "replace") {
    const Value* c = a.get(2, "count");
    return Value::string(py_replace(s, arg_str(a, 0, "old", "replace"), arg_str(a, 1, "new", "replace"),
                                    c ? c->as_int() : -1));
  }
  if (name == "title") return Value::string(change_case(s, CaseOp::kTitle));
  if (name == "capitalize") return Value::string(change_case(s, CaseOp::kCapitalize));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const std::string& x = arg_str(a, 0, "sub", name.c_str());
    if (name == "count") {
      if (x.empty()) return Value::integer(self.length() + 1);
      int64_t n = 0;
      for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
      return Value::integer(n);
    }
    size_t p = name[0] == 'r' ? s.rfind(x) : s.find(x);
    if (p == std::string::npos) {
      if (name == "find" || name == "rfind") return Value::integer(-1);
      throw RenderError(RenderError::Kind::kRuntime, "ValueError: substring not found");
    }
    return Value::integer(static_cast<int64_t>(utf8_chars(s.substr(0, p)).size()));
  }
  if (name == "join") {
    const Value* it = a.get(0, "iterable");
    if (!it) throw_type_error("join() takes exactly one argument");
    std::string out;
    bool firstj = true;
    for (const Value& v : it->iterate()) {
      if (!v.is_string()) throw_type_error("sequence item: expected str instance, " + v.type_name() + " found");
      if (!firstj) out += s;
      out += v.str();
      firstj = false;
    }
    return Value::string(out);
  }
  if (name == "format") return Value::string(py_format(s, a));
  if (name == "splitlines") {
    List out;
    std::string cur;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        out.push_back(Value::string(cur));
        cur.clear();
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      } else {
        cur += s[i];
      }
    }
    if (!cur.empty()) out.push_back(Value::string(cur));
    return Value::list(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& x = arg_str(a, 0, "prefix", name.c_str());
    if (name == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
    if (name == "removesuffix" && !x.empty() && s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0) {
      return Value::string(s.substr(0, s.size() - x.size()));
    }
    return Value::string(s);
  }
  auto all = [&](auto pred) {
    if (s.empty()) return Value::boolean(false);
    for (char ch : s) {
      if (!pred(static_cast<unsigned char>(ch))) return Value::boolean(false);
    }
    return Value::boolean(true);
  };
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") return all(::isdigit);
  if (name == "isalpha") return all(::isalpha);
  if (name == "isalnum") return all(::isalnum);
  if (name == "isspace") return all(::isspace);
  if (name == "isupper" || name == "islower") return Value::boolean(has_only_case(s, name == "isupper"));
  throw RenderError(RenderError::Kind::kRuntime, "str." + name + "() is not supported");
}

bool is_string_method(const std::string& n) {
  static const char* kNames[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "upper", "lower", "startswith",
                                 "endswith", "replace", "title", "capitalize", "find", "rfind", "index", "rindex",
                                 "count", "join", "format", "splitlines", "removeprefix", "removesuffix", "isdigit",
                                 "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace", "isupper", "islower"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

Value dict_method(const Value& self, const std::string& name, const CallArgs& a) {
  if (name == "get") {
    const Value* k = a.get(0, "key");
    if (!k) throw_type_error("get expected at least 1 argument, got 0");
    const Value* v = self.find(*k);
    if (v) return *v;
    const Value* d = a.get(1, "default");
    return d ? *d : Value::none();
  }
  List out;
  for (const auto& [k, v] : self.entries()) {
    if (name == "items") out.push_back(Value::tuple({k, v}));
    else if (name == "keys") out.push_back(k);
    else out.push_back(v);
  }
  return Value::list(std::move(out));
}

Value list_method(const Value& self, const std::string& name, const CallArgs& a) {
  const Value* x = a.get(0, "value");
  if (!x) throw_type_error(name + "() takes exactly one argument (0 given)");
  int64_t count = 0;
  for (size_t i = 0; i < self.items().size(); ++i) {
    if (values_equal(self.items()[i], *x)) {
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++count;
    }
  }
  if (name == "index") throw RenderError(RenderError::Kind::kRuntime, "ValueError: value is not in list");
  return Value::integer(count);
}

bool is_mutating(const std::string& n) {
  static const char* kNames[] = {"append", "pop", "insert", "extend", "remove", "clear", "update", "setdefault",
                                 "popitem", "sort", "reverse"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

Value bind(const Value& self, const std::string& name, Value (*method)(const Value&, const std::string&, const CallArgs&)) {
  return Value::function(name, [self, name, method](const CallArgs& a) { return method(self, name, a); });
}

std::string object_name(const Value& v) {
  if (v.is_none()) return "None";
  return "'" + v.type_name() + " object'";
}

}  // namespace

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto pieces = utf8_chars(s);
  std::vector<std::string_view> strip_set;
  bool whitespace = !chars || chars->is_none();
  if (!whitespace) {
    if (!chars->is_string()) throw_type_error("strip arg must be None or str");
    strip_set = utf8_chars(chars->str());
  }
  auto strip_me = [&](std::string_view ch) {
    if (whitespace) return py_space(code_point(ch));
    return std::find(strip_set.begin(), strip_set.end(), ch) != strip_set.end();
  };
  size_t b = 0, e = pieces.size();
  if (left) {
    while (b < e && strip_me(pieces[b])) ++b;
  }
  if (right) {
    while (e > b && strip_me(pieces[e - 1])) --e;
  }
  std::string out;
  for (size_t i = b; i < e; ++i) out += pieces[i];
  return out;
}

void throw_undefined(const Value& undefined) {
  throw RenderError(RenderError::Kind::kUndefined, undefined.str().empty() ? "value is undefined" : undefined.str());
}

Value get_attribute(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: throw_undefined(obj);
    case Value::Kind::kString:
      if (is_string_method(name)) return bind(obj, name, string_method);
      break;
    case Value::Kind::kDict:
      if (name == "get" || name == "items" || name == "keys" || name == "values") return bind(obj, name, dict_method);
      if (is_mutating(name) || name == "copy") {
        throw RenderError(RenderError::Kind::kSecurity, "access to attribute '" + name + "' of 'dict' object is unsafe.");
      }
      if (const Value* v = obj.find(name)) return *v;
      break;
    case Value::Kind::kNamespace:
      if (const Value* v = obj.find(name)) return *v;
      break;
    case Value::Kind::kList:
      if (name == "index" || name == "count") return bind(obj, name, list_method);
      if (is_mutating(name) || name == "copy") {
        throw RenderError(RenderError::Kind::kSecurity, "access to attribute '" + name + "' of 'list' object is unsafe.");
      }
      break;
    default: break;
  }
  return Value::undefined(object_name(obj) + " has no attribute '" + name + "'");
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: throw_undefined(obj);
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      if (const Value* v = obj.find(key)) return *v;
      break;
    case Value::Kind::kList:
    case Value::Kind::kString:
      if (obj.is_generator()) return Value::undefined("'generator object' is not subscriptable");
      if (key.is_int() || key.is_bool()) {
        int64_t n = obj.length(), i = key.as_int();
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined(object_name(obj) + " has no element " + key.to_str());
        if (obj.is_list()) return obj.items()[static_cast<size_t>(i)];
        return Value::string(char_str(utf8_chars(obj.str())[static_cast<size_t>(i)]));
      }
      break;
    default: break;
  }
  if (key.is_string() && !obj.is_namespace()) {
    Value attr = get_attribute(obj, key.str());
    if (!attr.is_undefined()) return attr;
  }
  if (obj.is_dict()) return Value::undefined(object_name(obj) + " has no attribute " + key.repr());
  return Value::undefined(object_name(obj) + " has no element " + key.repr());
}

Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (!obj.is_list() && !obj.is_string()) throw_type_error("'" + obj.type_name() + "' object is not subscriptable");
  auto as_index = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) throw_type_error(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  int64_t n = obj.length();
  int64_t step = as_index(step_v, "step").value_or(1);
  if (step == 0) throw RenderError(RenderError::Kind::kRuntime, "ValueError: slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v < 0 ? *v + n : *v;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t start = clamp(as_index(start_v, "start"), step > 0 ? 0 : n - 1);
  int64_t stop = clamp(as_index(stop_v, "stop"), step > 0 ? n : -1);
  std::vector<size_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(static_cast<size_t>(i));
  if (obj.is_list()) {
    List out;
    for (size_t i : picks) out.push_back(obj.items()[i]);
    return Value::list(std::move(out));
  }
  auto chars = utf8_chars(obj.str());
  std::string out;
  for (size_t i : picks) out += chars[i];
  return Value::string(out);
}

}  // namespace tandem::jinja
