#include "tokenizer/jinja/lexer.h"

#include <cctype>
#include <cstring>

#include "tokenizer/unicode.h"

namespace tandem::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string normalize_newlines(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}


class Lexer {
 public:
  explicit Lexer(std::string source) : src_(normalize_newlines(source)) {}

  StatusOr<std::vector<Token>> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      if (start == src_.size()) {
        emit_text(text);
        break;
      }
      char type = src_[start + 1];  // '{', '%' or '#'
      char mod = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (mod == '-') {
        size_t n = text.size();
        while (n > 0 && is_space(text[n - 1])) --n;
        text.resize(n);
      } else if (mod != '+' && type != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size()) {
          bool blank = true;
          for (size_t i = l_pos; i < text.size(); ++i) blank = blank && is_space(text[i]);
          if (blank) text.resize(l_pos);
        }
      }
      emit_text(text);
      pos_ = start + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      if (type == '#') {
        size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) return error("unclosed comment");
        bool strip = end > pos_ && src_[end - 1] == '-';
        pos_ = end + 2;
        line_starting = after_tag(strip, /*trim=*/true);
        continue;
      }
      if (type == '%' && try_raw()) {
        line_starting = false;
        continue;
      }
      tokens_.push_back({type == '{' ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, "", line_at(start)});
      Status s = lex_tag(type == '{' ? '}' : '%');
      if (!s.ok()) return s;
      line_starting = after_tag(last_end_strip_, type == '%' && !last_end_plus_);
    }
    tokens_.push_back({Token::Kind::kEof, "", line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  int line_at(size_t offset) {
    while (line_pos_ < offset && line_pos_ < src_.size()) {
      if (src_[line_pos_] == '\n') ++line_;
      ++line_pos_;
    }
    return line_;
  }

  void emit_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back({Token::Kind::kText, text, line_at(pos_)});
  }

  // After a tag: `-` strips all following whitespace; trim_blocks drops one "\n".
  // Returns whether the consumed text ended in a newline (jinja's line_starting).
  bool after_tag(bool strip, bool trim) {
    bool ended_newline = false;
    if (strip) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ended_newline = src_[pos_++] == '\n';
    } else if (trim && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ended_newline = true;
    }
    return ended_newline;
  }

  // {% raw %}...{% endraw %}: emitted verbatim.
  bool try_raw() {
    size_t p = pos_;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    bool strip = src_.compare(p, 1, "-") == 0;
    if (strip) ++p;
    if (src_.compare(p, 2, "%}") != 0) return false;
    pos_ = p + 2;
    after_tag(strip, true);
    for (size_t q = pos_; q < src_.size(); ++q) {
      if (src_.compare(q, 2, "{%") != 0) continue;
      size_t r = q + 2;
      bool lstrip = r < src_.size() && src_[r] == '-';
      if (lstrip || (r < src_.size() && src_[r] == '+')) ++r;
      while (r < src_.size() && is_space(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") != 0) continue;
      r += 6;
      while (r < src_.size() && is_space(src_[r])) ++r;
      bool rstrip = src_.compare(r, 1, "-") == 0;
      if (rstrip) ++r;
      if (src_.compare(r, 2, "%}") != 0) continue;
      std::string body = src_.substr(pos_, q - pos_);
      if (lstrip) {
        while (!body.empty() && is_space(body.back())) body.pop_back();
      }
      emit_text(body);
      pos_ = r + 2;
      after_tag(rstrip, true);
      return true;
    }
    return false;  // unterminated: the parser reports the unknown 'raw' tag
  }

  Status lex_tag(char end_char) {
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) return error(end_char == '}' ? "unclosed '{{'" : "unclosed '{%'");
      if (depth == 0) {
        size_t p = pos_;
        bool strip = src_[p] == '-', plus = src_[p] == '+';
        if (strip || plus) ++p;
        if (p + 1 < src_.size() && src_[p] == end_char && src_[p + 1] == '}') {
          if (!(plus && end_char == '}')) {
            pos_ = p + 2;
            last_end_strip_ = strip;
            last_end_plus_ = plus;
            tokens_.push_back({end_char == '}' ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, "", line_at(pos_)});
            return ok_status();
          }
        }
      }
      char c = src_[pos_];
      int line = line_at(pos_);
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = pos_;
        while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
        tokens_.push_back({Token::Kind::kName, src_.substr(b, pos_ - b), line});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number(line);
      } else if (c == '\'' || c == '"') {
        RETURN_IF_ERROR(lex_string(line));
      } else {
        static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                     "=",  "(",  ")",  "[",  "]",  "{",  "}", ",", ".", ":", "|", ";"};
        const char* found = nullptr;
        for (const char* op : kOps) {
          if (src_.compare(pos_, std::strlen(op), op) == 0) {
            found = op;
            break;
          }
        }
        if (!found) return error(std::string("unexpected character '") + c + "'");
        std::string op = found;
        if (op == "(" || op == "[" || op == "{") ++depth;
        if (op == ")" || op == "]" || op == "}") --depth;
        pos_ += op.size();
        tokens_.push_back({Token::Kind::kOperator, op, line});
      }
    }
  }

  void lex_number(int line) {
    // A number right after '.' is an integer index (x.0), never a float.
    bool after_dot = !tokens_.empty() && tokens_.back().kind == Token::Kind::kOperator && tokens_.back().value == ".";
    auto digits = [&]() {
      std::string d;
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
        if (src_[pos_] != '_') d += src_[pos_];
        ++pos_;
      }
      return d;
    };
    std::string text = digits();
    bool is_float = false;
    if (!after_dot && pos_ + 1 < src_.size() && src_[pos_] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      ++pos_;
      text += "." + digits();
      is_float = true;
    }
    if (!after_dot && pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        text += "e" + src_.substr(pos_ + 1, p - pos_ - 1);
        pos_ = p;
        text += digits();
        is_float = true;
      }
    }
    tokens_.push_back({is_float ? Token::Kind::kFloat : Token::Kind::kInteger, text, line});
  }

  Status lex_string(int line) {
    char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) return error("unterminated string literal");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return error("unterminated string literal");
      char e = src_[pos_++];
      auto hex = [&](int n) -> long {
        if (pos_ + n > src_.size()) return -1;
        std::string h = src_.substr(pos_, n);
        for (char x : h) {
          if (!std::isxdigit(static_cast<unsigned char>(x))) return -1;
        }
        pos_ += n;
        return std::stol(h, nullptr, 16);
      };
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '0': out += '\0'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          long cp = hex(e == 'x' ? 2 : e == 'u' ? 4 : 8);
          if (cp < 0) return error("bad \\" + std::string(1, e) + " escape in string literal");
          unicode::append_utf8(out, static_cast<uint32_t>(cp));
          break;
        }
        default:  // Python keeps unknown escapes as written
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back({Token::Kind::kString, out, line});
    return ok_status();
  }

  Status error(const std::string& what) {
    return invalid_argument("chat template line " + std::to_string(line_at(pos_)) + ": " + what);
  }

  std::string src_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  bool last_end_strip_ = false;
  bool last_end_plus_ = false;
  std::vector<Token> tokens_;
};

}  // namespace

StatusOr<std::vector<Token>> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace tandem::jinja
