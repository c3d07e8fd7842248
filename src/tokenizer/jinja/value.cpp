#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/unicode.h"

namespace tandem::jinja {

void throw_type_error(const std::string& message) { throw RenderError(RenderError::Kind::kType, message); }

const Value* CallArgs::get(size_t index, std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return index < positional.size() ? &positional[index] : nullptr;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      return u > static_cast<uint64_t>(INT64_MAX) ? floating(static_cast<double>(u)) : integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict items;
      items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(string(it.key()), from_json(it.value()));
      return dict(std::move(items));
    }
    default: return none();  // binary / discarded: not produced by the JSON parser
  }
}

const Value* Value::find(const Value& key) const {
  for (const auto& [k, v] : *dict_) {
    if (values_equal(k, key)) return &v;
  }
  return nullptr;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : *dict_) {
    if (k.is_string() && k.str() == key) return &v;
  }
  return nullptr;
}

void Value::set(const Value& key, Value value) const {
  for (auto& [k, v] : *dict_) {
    if (values_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  dict_->emplace_back(key, std::move(value));
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool:
    case Kind::kInt: return int_ != 0;
    case Kind::kFloat: return float_ != 0;
    case Kind::kString: return !str_->empty();
    case Kind::kList: return generator_ || !list_->empty();
    case Kind::kDict: return !dict_->empty();
    default: return true;
  }
}

std::string python_float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-1.2345e+07"
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  int exp10 = std::stoi(sci.substr(e_pos + 1));
  std::string out = neg ? "-" : "";
  if (exp10 < -4 || exp10 >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return out + eb;
  }
  if (exp10 < 0) return out + "0." + std::string(-exp10 - 1, '0') + digits;
  size_t int_len = static_cast<size_t>(exp10) + 1;
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0') + ".0";
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

namespace {

uint32_t decode_cp(std::string_view ch) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(ch[i])); };
  if (ch.size() == 1) return b(0);
  if (ch.size() == 2) return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
  if (ch.size() == 3) return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
}

// Characters Python's str.isprintable() rejects among those likely in chat text.
bool python_unprintable(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || (cp >= 0x200b && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xfeff;
}

std::string python_str_repr(const std::string& s) {
  char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (std::string_view ch : utf8_chars(s)) {
    uint32_t cp = decode_cp(ch);
    char buf[16];
    if (cp == '\\') out += "\\\\";
    else if (cp == static_cast<uint32_t>(quote)) out += std::string("\\") + quote;
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (python_unprintable(cp)) {
      std::snprintf(buf, sizeof(buf), cp < 0x100 ? "\\x%02x" : "\\u%04x", cp);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + quote;
}

}  // namespace

std::vector<std::string_view> utf8_chars(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
    n = std::min(n, s.size() - i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

namespace {

uint32_t cp_upper(uint32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c == 0xb5) return 0x39c;
  if (c >= 0xe0 && c <= 0xfe && c != 0xf7) return c - 0x20;
  if (c == 0xff) return 0x178;
  if (c >= 0x100 && c <= 0x137 && c != 0x130 && c != 0x131) return (c & 1) ? c - 1 : c;
  if (c == 0x131) return 'I';
  if (c >= 0x139 && c <= 0x148) return (c & 1) ? c : c - 1;
  if (c >= 0x14a && c <= 0x177) return (c & 1) ? c - 1 : c;
  if (c >= 0x179 && c <= 0x17e) return (c & 1) ? c : c - 1;
  if (c == 0x17f) return 'S';
  if (c == 0x3c2) return 0x3a3;
  if (c >= 0x3b1 && c <= 0x3cb) return c - 0x20;
  if (c == 0x3ac) return 0x386;
  if (c >= 0x3ad && c <= 0x3af) return c - 0x25;
  if (c == 0x3cc) return 0x38c;
  if (c == 0x3cd || c == 0x3ce) return c - 0x3f;
  if (c >= 0x430 && c <= 0x44f) return c - 0x20;
  if (c >= 0x450 && c <= 0x45f) return c - 0x50;
  if (c >= 0xff41 && c <= 0xff5a) return c - 0x20;
  return c;
}

uint32_t cp_lower(uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 0x20;
  if (c == 0x178) return 0xff;
  if (c >= 0x100 && c <= 0x137 && c != 0x130 && c != 0x131) return (c & 1) ? c : c + 1;
  if (c >= 0x139 && c <= 0x148) return (c & 1) ? c + 1 : c;
  if (c >= 0x14a && c <= 0x177) return (c & 1) ? c : c + 1;
  if (c >= 0x179 && c <= 0x17e) return (c & 1) ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3ab && c != 0x3a2) return c + 0x20;
  if (c == 0x386) return 0x3ac;
  if (c >= 0x388 && c <= 0x38a) return c + 0x25;
  if (c == 0x38c) return 0x3cc;
  if (c == 0x38e || c == 0x38f) return c + 0x3f;
  if (c >= 0x410 && c <= 0x42f) return c + 0x20;
  if (c >= 0x400 && c <= 0x40f) return c + 0x50;
  if (c >= 0xff21 && c <= 0xff3a) return c + 0x20;
  return c;
}

bool cp_cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c || c == 0xdf; }



void append_upper(uint32_t c, std::string& out) {
  if (c == 0xdf) out += "SS";  // Python: 'ß'.upper() == 'SS'
  else unicode::append_utf8(out, cp_upper(c));
}

}  // namespace

std::string change_case(std::string_view s, CaseOp op) {
  std::string out;
  out.reserve(s.size());
  bool prev_cased = false, first = true, word_start = true;
  for (std::string_view ch : utf8_chars(s)) {
    uint32_t c = decode_cp(ch);
    bool up = false;
    switch (op) {
      case CaseOp::kUpper: up = true; break;
      case CaseOp::kLower: up = false; break;
      case CaseOp::kTitle: up = !prev_cased; break;
      case CaseOp::kCapitalize: up = first; break;
      case CaseOp::kJinjaTitle: up = word_start; break;
    }
    if (up) append_upper(c, out);
    else unicode::append_utf8(out, cp_lower(c));
    prev_cased = cp_cased(c);
    first = false;
    // jinja's title: words begin after whitespace, '-', and opening brackets.
    word_start = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '-' || c == '(' ||
                 c == '{' || c == '[' || c == '<';
  }
  return out;
}

bool has_only_case(std::string_view s, bool upper) {
  bool cased = false;
  for (std::string_view ch : utf8_chars(s)) {
    uint32_t c = decode_cp(ch);
    if (!cp_cased(c)) continue;
    cased = true;
    bool lower_char = cp_upper(c) != c || c == 0xdf;
    bool upper_char = cp_lower(c) != c;
    if (upper ? lower_char : upper_char) return false;
  }
  return cased;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&#39;"; break;
      case '"': out += "&#34;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::kString: return python_str_repr(*str_);
    case Kind::kUndefined: return "Undefined";
    default: return to_str();
  }
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::kUndefined: return "";
    case Kind::kNone: return "None";
    case Kind::kBool: return int_ ? "True" : "False";
    case Kind::kInt: return std::to_string(int_);
    case Kind::kFloat: return python_float_repr(float_);
    case Kind::kString: return *str_;
    case Kind::kList: {
      // Python prints "<generator object ... at 0x...>": no stable text to match.
      if (generator_) throw RenderError(RenderError::Kind::kRuntime, "printing a generator (add '|list')");
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) out += (i ? ", " : "") + (*list_)[i].repr();
      if (tuple_) return out + (list_->size() == 1 ? ",)" : ")");
      return out + "]";
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::string out = kind_ == Kind::kNamespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < dict_->size(); ++i) {
        out += (i ? ", " : "") + (*dict_)[i].first.repr() + ": " + (*dict_)[i].second.repr();
      }
      return out + (kind_ == Kind::kNamespace ? "}>" : "}");
    }
    case Kind::kFunction: return "<function " + fn_->name + ">";
  }
  return "";
}

int64_t Value::length() const {
  switch (kind_) {
    case Kind::kUndefined: return 0;
    case Kind::kString: return static_cast<int64_t>(utf8_chars(*str_).size());
    case Kind::kList:
      if (generator_) throw_type_error("object of type 'generator' has no len()");
      return static_cast<int64_t>(list_->size());
    case Kind::kDict: return static_cast<int64_t>(dict_->size());
    default: throw_type_error("object of type '" + type_name() + "' has no len()");
  }
}

List Value::iterate() const {
  switch (kind_) {
    case Kind::kUndefined: return {};
    case Kind::kList: return *list_;
    case Kind::kDict: {
      List keys;
      for (const auto& kv : *dict_) keys.push_back(kv.first);
      return keys;
    }
    case Kind::kString: {
      List chars;
      for (auto ch : utf8_chars(*str_)) chars.push_back(string(std::string(ch)));
      return chars;
    }
    default: throw_type_error("'" + type_name() + "' object is not iterable");
  }
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return markup_ ? "Markup" : "str";
    case Kind::kList: return generator_ ? "generator" : tuple_ ? "tuple" : "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kFunction: return "function";
  }
  return "object";
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind() || a.is_generator() || b.is_generator() || a.is_tuple() != b.is_tuple()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!values_equal(a.items()[i], b.items()[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* other = b.find(k);
        if (!other || !values_equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace: return &a.entries() == &b.entries();
    case Value::Kind::kFunction: return &a.fn() == &b.fn();
    default: return false;
  }
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.as_double(), y = b.as_double();
    if (!a.is_float() && !b.is_float()) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    return x < y ? -1 : x > y;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0;
  }
  if (a.is_list() && b.is_list()) {
    size_t n = std::min(a.items().size(), b.items().size());
    for (size_t i = 0; i < n; ++i) {
      if (!values_equal(a.items()[i], b.items()[i])) return compare_values(a.items()[i], b.items()[i]);
    }
    return a.items().size() < b.items().size() ? -1 : a.items().size() > b.items().size();
  }
  throw_type_error("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

Value python_add(const Value& a, const Value& b) {
  if (a.is_undefined()) throw RenderError(RenderError::Kind::kUndefined, a.str().empty() ? "value is undefined" : a.str());
  if (b.is_undefined()) throw RenderError(RenderError::Kind::kUndefined, b.str().empty() ? "value is undefined" : b.str());
  if (a.is_string() && b.is_string()) {
    // markupsafe: Markup + str escapes the plain side and stays Markup.
    if (a.is_markup() && !b.is_markup()) return Value::string(a.str() + html_escape(b.str()), true);
    if (b.is_markup() && !a.is_markup()) return Value::string(html_escape(a.str()) + b.str(), true);
    return Value::string(a.str() + b.str(), a.is_markup());
  }
  if (a.is_list() && b.is_list() && !a.is_generator() && !b.is_generator()) {
    List items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return Value::list(std::move(items));
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_double() + b.as_double());
    int64_t r = 0;
    if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) {
      throw RenderError(RenderError::Kind::kRuntime, "integer overflow (Python big integers are not supported)");
    }
    return Value::integer(r);
  }
  if (a.is_string() || a.is_list()) {
    throw_type_error("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name());
  }
  throw_type_error("unsupported operand type(s) for +: '" + a.type_name() + "' and '" + b.type_name() + "'");
}

namespace {

void json_string(const std::string& s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (std::string_view ch : utf8_chars(s)) {
    uint32_t cp = decode_cp(ch);
    char buf[16];
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp < 0x20 || (ensure_ascii && cp > 0x7e)) {
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(f);
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::kString: return k.str();
    case Value::Kind::kBool: return k.as_bool() ? "true" : "false";
    case Value::Kind::kNone: return "null";
    case Value::Kind::kInt: return std::to_string(k.as_int());
    case Value::Kind::kFloat: return json_float(k.as_double());
    default: throw_type_error("keys must be str, int, float, bool or None, not " + k.type_name());
  }
}

void dump(const Value& v, const JsonDumpOptions& o, const std::string& item_sep, const std::string& key_sep, int level,
          std::string& out) {
  auto newline = [&](int lvl) {
    if (o.indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(o.indent * lvl), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += json_float(v.as_double()); return;
    case Value::Kind::kString: json_string(v.str(), o.ensure_ascii, out); return;
    case Value::Kind::kList: {
      if (v.is_generator()) throw_type_error("Object of type generator is not JSON serializable");
      if (v.items().empty()) {
        out += "[]";
        return;
      }
      out += '[';
      newline(level + 1);
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) {
          out += item_sep;
          newline(level + 1);
        }
        dump(v.items()[i], o, item_sep, key_sep, level + 1, out);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      if (v.entries().empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> entries;
      for (const auto& [k, val] : v.entries()) entries.emplace_back(json_key(k), &val);
      if (o.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      }
      out += '{';
      newline(level + 1);
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) {
          out += item_sep;
          newline(level + 1);
        }
        json_string(entries[i].first, o.ensure_ascii, out);
        out += key_sep;
        dump(*entries[i].second, o, item_sep, key_sep, level + 1, out);
      }
      newline(level);
      out += '}';
      return;
    }
    default: throw_type_error("Object of type " + v.type_name() + " is not JSON serializable");
  }
}

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  std::string item_sep = options.item_separator, key_sep = options.key_separator;
  if (item_sep.empty()) item_sep = options.indent < 0 ? ", " : ",";
  if (key_sep.empty()) key_sep = ": ";
  std::string out;
  dump(v, options, item_sep, key_sep, 0, out);
  return out;
}

}  // namespace tandem::jinja
