#include "tokenizer/jinja/parser.h"

#include <set>

#include "tokenizer/jinja/lexer.h"

namespace tandem::jinja {
namespace {

struct ParseError {
  int line;
  std::string message;
  bool unsupported = false;  // valid Jinja this interpreter does not implement
};

using K = Token::Kind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_all() {
    std::string end_tag;
    Body body = parse_body({}, &end_tag);
    if (!end_tag.empty()) fail("unexpected '{% " + end_tag + " %}'");
    return body;
  }

 private:
  const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
  [[noreturn]] void fail(const std::string& msg) const { throw ParseError{peek().line, msg}; }

  bool is_op(const char* op, size_t k = 0) const { return peek(k).kind == K::kOperator && peek(k).value == op; }
  bool is_name(const char* name, size_t k = 0) const { return peek(k).kind == K::kName && peek(k).value == name; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++i_;
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    ++i_;
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(std::string("expected '") + op + "', got '" + describe(peek()) + "'");
  }
  std::string expect_name() {
    if (peek().kind != K::kName) fail("expected a name, got '" + describe(peek()) + "'");
    return next().value;
  }
  void expect_block_end() {
    if (peek().kind != K::kBlockEnd) fail("expected '%}', got '" + describe(peek()) + "'");
    ++i_;
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case K::kEof: return "end of template";
      case K::kBlockEnd: return "%}";
      case K::kVarEnd: return "}}";
      default: return t.value;
    }
  }

  ExprPtr node(Expr::Kind kind) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = peek().line;
    return e;
  }

  // Parses statements until one of `ends` opens a block tag; stores its name.
  Body parse_body(const std::set<std::string>& ends, std::string* end_tag) {
    Body body;
    while (true) {
      const Token& tok = peek();
      if (tok.kind == K::kEof) {
        if (!ends.empty()) fail("missing '{% " + *ends.begin() + " %}'");
        end_tag->clear();
        return body;
      }
      if (tok.kind == K::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = tok.line;
        s->text = tok.value;
        body.push_back(std::move(s));
        ++i_;
      } else if (tok.kind == K::kVarBegin) {
        ++i_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = tok.line;
        s->expr = parse_tuple();
        if (peek().kind != K::kVarEnd) fail("expected '}}', got '" + describe(peek()) + "'");
        ++i_;
        body.push_back(std::move(s));
      } else if (tok.kind == K::kBlockBegin) {
        const Token& name = peek(1);
        if (name.kind == K::kName && ends.count(name.value)) {
          i_ += 2;
          *end_tag = name.value;
          return body;
        }
        ++i_;
        body.push_back(parse_statement());
      } else {
        fail("unexpected '" + describe(tok) + "'");
      }
    }
  }

  StmtPtr parse_statement() {
    DepthGuard guard(this);
    int line = peek().line;
    std::string tag = expect_name();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    std::string end;
    if (tag == "if") {
      s->kind = Stmt::Kind::kIf;
      ExprPtr cond = parse_tuple();
      expect_block_end();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, &end);
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "elif") {
          cond = parse_tuple();
          expect_block_end();
          continue;
        }
        expect_block_end();
        if (end == "else") {
          s->else_body = parse_body({"endif"}, &end);
          expect_block_end();
        }
        break;
      }
    } else if (tag == "for") {
      s->kind = Stmt::Kind::kFor;
      s->targets = parse_targets();
      if (!accept_name("in")) fail("expected 'in' in for loop");
      s->expr = parse_tuple(/*with_condexpr=*/false);
      if (accept_name("if")) s->cond = parse_expression();
      if (is_name("recursive")) throw ParseError{line, "unsupported 'recursive' for loop", true};
      expect_block_end();
      s->body = parse_body({"else", "endfor"}, &end);
      expect_block_end();
      if (end == "else") {
        s->else_body = parse_body({"endfor"}, &end);
        expect_block_end();
      }
    } else if (tag == "set") {
      if (peek().kind == K::kName && is_op(".", 1)) {
        s->kind = Stmt::Kind::kSet;
        s->targets.push_back(next().value);
        ++i_;
        s->attr = expect_name();
        expect_op("=");
        s->expr = parse_tuple();
        expect_block_end();
      } else {
        std::vector<std::string> targets = parse_targets();
        if (accept_op("=")) {
          s->kind = Stmt::Kind::kSet;
          s->targets = std::move(targets);
          s->expr = parse_tuple();
          expect_block_end();
        } else {
          if (targets.size() != 1) fail("a block set takes one name");
          s->kind = Stmt::Kind::kSetBlock;
          s->targets = std::move(targets);
          if (accept_op("|")) s->filter = parse_filter_chain(nullptr);
          expect_block_end();
          s->body = parse_body({"endset"}, &end);
          expect_block_end();
        }
      }
    } else if (tag == "macro") {
      s->kind = Stmt::Kind::kMacro;
      s->targets.push_back(expect_name());
      s->params = parse_params();
      expect_block_end();
      s->body = parse_body({"endmacro"}, &end);
      if (peek().kind == K::kName) ++i_;  // {% endmacro name %}
      expect_block_end();
    } else if (tag == "call") {
      s->kind = Stmt::Kind::kCallBlock;
      if (is_op("(")) s->params = parse_params();
      s->expr = parse_expression();
      if (s->expr->kind != Expr::Kind::kCall) fail("expected a macro call after 'call'");
      expect_block_end();
      s->body = parse_body({"endcall"}, &end);
      expect_block_end();
    } else if (tag == "filter") {
      s->kind = Stmt::Kind::kFilterBlock;
      s->filter = parse_filter_chain(nullptr);
      expect_block_end();
      s->body = parse_body({"endfilter"}, &end);
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      s->kind = tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      expect_block_end();
    } else if (tag == "generation") {
      // transformers' AssistantTracker tag: renders its body unchanged.
      s->kind = Stmt::Kind::kScope;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, &end);
      expect_block_end();
    } else if (tag == "endif" || tag == "endfor" || tag == "else" || tag == "elif" || tag == "endmacro" ||
               tag == "endset" || tag == "endcall" || tag == "endfilter" || tag == "endgeneration" || tag == "endraw") {
      throw ParseError{line, "unexpected '{% " + tag + " %}'"};
    } else {
      throw ParseError{line, "unsupported tag '{% " + tag + " %}'", true};
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = accept_op("(");
    do {
      names.push_back(expect_name());
    } while (accept_op(","));
    if (paren) expect_op(")");
    return names;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!accept_op(")")) {
      if (!params.empty()) expect_op(",");
      if (accept_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (accept_op("=")) p.default_value = parse_expression();
      params.push_back(std::move(p));
    }
    return params;
  }

  // expr (',' expr)* — a tuple when there is a comma.
  ExprPtr parse_tuple(bool with_condexpr = true) {
    auto first = with_condexpr ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto tuple = node(Expr::Kind::kTuple);
    tuple->args.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().kind == K::kBlockEnd || peek().kind == K::kVarEnd || is_op(")")) break;
      tuple->args.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    ExprPtr e = parse_or();
    while (accept_name("if")) {
      auto cond = node(Expr::Kind::kCondExpr);
      cond->a = std::move(e);
      cond->b = parse_or();
      if (accept_name("else")) cond->c = parse_expression();
      e = std::move(cond);
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b) {
    auto e = node(Expr::Kind::kBinary);
    e->name = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (accept_name("or")) e = binary("or", std::move(e), parse_and());
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (accept_name("and")) e = binary("and", std::move(e), parse_not());
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      auto e = node(Expr::Kind::kUnary);
      ++i_;
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      std::string op;
      if (peek().kind == K::kOperator &&
          (peek().value == "==" || peek().value == "!=" || peek().value == "<" || peek().value == "<=" ||
           peek().value == ">" || peek().value == ">=")) {
        op = next().value;
      } else if (accept_name("in")) {
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        i_ += 2;
        op = "not in";
      } else {
        return e;
      }
      e = binary(op, std::move(e), parse_math1());
    }
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().value;
      e = binary(op, std::move(e), parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (accept_op("~")) e = binary("~", std::move(e), parse_math2());
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().value;
      e = binary(op, std::move(e), parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (accept_op("**")) e = binary("**", std::move(e), parse_unary());
    return e;
  }
  // Bounds recursion so a pathological template is an error, not a stack overflow.
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxDepth) p_->fail("template nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };
  static constexpr int kMaxDepth = 256;

  ExprPtr parse_unary(bool with_filter = true) {
    DepthGuard guard(this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(Expr::Kind::kUnary);
      e->name = next().value;
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tok = peek();
    if (tok.kind == K::kName) {
      ++i_;
      const std::string& v = tok.value;
      auto e = node(Expr::Kind::kLiteral);
      if (v == "true" || v == "True") e->literal = Value::boolean(true);
      else if (v == "false" || v == "False") e->literal = Value::boolean(false);
      else if (v == "none" || v == "None") e->literal = Value::none();
      else {
        e->kind = Expr::Kind::kName;
        e->name = v;
      }
      return e;
    }
    if (tok.kind == K::kString) {
      auto e = node(Expr::Kind::kLiteral);
      std::string s;
      while (peek().kind == K::kString) s += next().value;  // adjacent literals concatenate
      e->literal = Value::string(std::move(s));
      return e;
    }
    if (tok.kind == K::kInteger || tok.kind == K::kFloat) {
      auto e = node(Expr::Kind::kLiteral);
      ++i_;
      try {
        e->literal = tok.kind == K::kInteger ? Value::integer(std::stoll(tok.value)) : Value::floating(std::stod(tok.value));
      } catch (const std::exception&) {
        fail("number out of range: " + tok.value);
      }
      return e;
    }
    if (accept_op("(")) {
      if (accept_op(")")) return node(Expr::Kind::kTuple);
      ExprPtr e = parse_expression();
      if (is_op(",")) {
        auto tuple = node(Expr::Kind::kTuple);
        tuple->args.push_back(std::move(e));
        while (accept_op(",")) {
          if (is_op(")")) break;
          tuple->args.push_back(parse_expression());
        }
        e = std::move(tuple);
      }
      expect_op(")");
      return e;
    }
    if (accept_op("[")) {
      auto e = node(Expr::Kind::kList);
      while (!accept_op("]")) {
        if (!e->args.empty()) expect_op(",");
        if (accept_op("]")) break;
        e->args.push_back(parse_expression());
      }
      return e;
    }
    if (accept_op("{")) {
      auto e = node(Expr::Kind::kDict);
      while (!accept_op("}")) {
        if (!e->pairs.empty()) expect_op(",");
        if (accept_op("}")) break;
        ExprPtr k = parse_expression();
        expect_op(":");
        e->pairs.emplace_back(std::move(k), parse_expression());
      }
      return e;
    }
    fail("unexpected '" + describe(tok) + "'");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        ++i_;
        auto g = node(Expr::Kind::kGetAttr);
        if (peek().kind == K::kInteger) {
          g->kind = Expr::Kind::kGetItem;
          auto idx = node(Expr::Kind::kLiteral);
          idx->literal = Value::integer(std::stoll(next().value));
          g->b = std::move(idx);
        } else {
          g->name = expect_name();
        }
        g->a = std::move(e);
        e = std::move(g);
      } else if (is_op("[")) {
        ++i_;
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    ExprPtr parts[3];
    int n = 0;
    bool slice = false;
    while (true) {
      if (is_op(":")) {
        ++i_;
        slice = true;
        if (++n > 2) fail("too many ':' in subscript");
        continue;
      }
      if (accept_op("]")) break;
      if (parts[n]) fail("expected ']' in subscript");
      parts[n] = parse_expression();
    }
    auto e = node(slice ? Expr::Kind::kSlice : Expr::Kind::kGetItem);
    e->a = std::move(target);
    if (!slice) {
      if (!parts[0]) fail("empty subscript");
      e->b = std::move(parts[0]);
    } else {
      e->b = std::move(parts[0]);
      e->c = std::move(parts[1]);
      if (parts[2]) e->args.push_back(std::move(parts[2]));
    }
    return e;
  }

  void parse_call_args(Expr* e) {
    expect_op("(");
    while (!accept_op(")")) {
      if (!e->args.empty() || !e->kwargs.empty()) expect_op(",");
      if (accept_op(")")) break;
      if (is_op("*") || is_op("**")) throw ParseError{peek().line, "unsupported *args / **kwargs in a call", true};
      if (peek().kind == K::kName && is_op("=", 1)) {
        std::string k = next().value;
        ++i_;
        e->kwargs.emplace_back(k, parse_expression());
      } else {
        e->args.push_back(parse_expression());
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = node(Expr::Kind::kCall);
    e->a = std::move(callee);
    parse_call_args(e.get());
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        e = parse_filter_chain(std::move(e), /*one=*/true);
      } else if (is_name("is")) {
        ++i_;
        auto t = node(Expr::Kind::kTest);
        t->negated = accept_name("not");
        t->name = expect_name();
        while (accept_op(".")) t->name += "." + expect_name();
        if (jinja2_knows_test(t->name) && !test_supported(t->name)) throw ParseError{peek().line, "unsupported test 'is " + t->name + "'", true};
        t->a = std::move(e);
        if (is_op("(")) {
          parse_call_args(t.get());
        } else if ((peek().kind == K::kName && !is_name("else") && !is_name("or") && !is_name("and") &&
                    !is_name("if") && !is_name("is") && !is_name("in") && !is_name("not")) ||
                   peek().kind == K::kString || peek().kind == K::kInteger || peek().kind == K::kFloat ||
                   is_op("[") || is_op("{")) {
          // `is divisibleby 3`, `is sameas false`: one bare argument.
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  // name(args) (| name(args))* applied to `subject` (null inside filter blocks).
  ExprPtr parse_filter_chain(ExprPtr subject, bool one = false) {
    do {
      auto f = node(Expr::Kind::kFilter);
      f->name = expect_name();
      while (accept_op(".")) f->name += "." + expect_name();
      if (jinja2_knows_filter(f->name) && !filter_supported(f->name)) throw ParseError{peek().line, "unsupported filter '" + f->name + "'", true};
      if (is_op("(")) parse_call_args(f.get());
      f->a = std::move(subject);
      subject = std::move(f);
    } while (!one && accept_op("|"));
    return subject;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

// jinja2 fails at compile time on a filter or test it does not know, unless
// the use sits in an if-branch or conditional expression of the same scope
// (a "soft frame"): then only reaching it fails. Loop, macro, call, filter
// and set-block bodies start a new, hard scope.
void check_names(const Expr* e, bool soft) {
  if (!e) return;
  if (e->kind == Expr::Kind::kCondExpr) soft = true;
  if (!soft && e->kind == Expr::Kind::kFilter && !jinja2_knows_filter(e->name)) {
    throw ParseError{e->line, "No filter named '" + e->name + "'."};
  }
  if (!soft && e->kind == Expr::Kind::kTest && !jinja2_knows_test(e->name)) {
    throw ParseError{e->line, "No test named '" + e->name + "'."};
  }
  check_names(e->a.get(), soft);
  check_names(e->b.get(), soft);
  check_names(e->c.get(), soft);
  for (const auto& x : e->args) check_names(x.get(), soft);
  for (const auto& kv : e->kwargs) check_names(kv.second.get(), soft);
  for (const auto& kv : e->pairs) {
    check_names(kv.first.get(), soft);
    check_names(kv.second.get(), soft);
  }
}

void check_names(const Body& body, bool soft) {
  for (const auto& s : body) {
    switch (s->kind) {
      case Stmt::Kind::kIf:
        for (const auto& [cond, b] : s->branches) {
          check_names(cond.get(), true);
          check_names(b, true);
        }
        check_names(s->else_body, true);
        break;
      case Stmt::Kind::kFor:
        check_names(s->expr.get(), soft);
        check_names(s->cond.get(), false);
        check_names(s->body, false);
        check_names(s->else_body, false);
        break;
      case Stmt::Kind::kMacro:
        for (const auto& p : s->params) check_names(p.default_value.get(), false);
        check_names(s->body, false);
        break;
      case Stmt::Kind::kCallBlock:
        check_names(s->expr.get(), soft);
        check_names(s->body, false);
        break;
      case Stmt::Kind::kSetBlock:
      case Stmt::Kind::kFilterBlock:
      case Stmt::Kind::kScope:
        check_names(s->filter.get(), false);
        check_names(s->body, false);
        break;
      default:
        check_names(s->expr.get(), soft);
        break;
    }
  }
}

}  // namespace

StatusOr<Body> parse_template(const std::string& source) {
  ASSIGN_OR_RETURN(auto tokens, tokenize(source));
  try {
    Body body = Parser(std::move(tokens)).parse_all();
    check_names(body, false);
    return body;
  } catch (const ParseError& e) {
    std::string msg = "chat template line " + std::to_string(e.line) + ": " + e.message;
    return e.unsupported ? unimplemented(msg) : invalid_argument(msg);
  }
}

}  // namespace tandem::jinja
