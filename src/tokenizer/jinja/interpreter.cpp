#include "tokenizer/jinja/interpreter.h"

#include <cmath>

#include "tokenizer/jinja/builtins.h"

namespace tandem::jinja {
namespace {

[[noreturn]] void runtime_error(const std::string& m) { throw RenderError(RenderError::Kind::kRuntime, m); }

void check_defined(const Value& v) {
  if (v.is_undefined()) throw_undefined(v);
}

Value repeat(const Value& seq, int64_t n) {
  int64_t unit = seq.is_string() ? static_cast<int64_t>(seq.str().size()) : static_cast<int64_t>(seq.items().size());
  if (n > 0 && unit > 0 && n > (int64_t{1} << 28) / unit) runtime_error("sequence repetition is too large");
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(out);
  }
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  check_defined(a);
  check_defined(b);
  if (op == "+") return python_add(a, b);
  auto unsupported = [&]() -> Value {
    throw_type_error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
  }
  if (op == "%" && a.is_string()) {
    CallArgs args;
    args.positional = b.is_list() ? b.items() : List{b};
    return apply_filter("format", a, args);
  }
  if (!a.is_number() || !b.is_number()) return unsupported();
  bool floats = a.is_float() || b.is_float();
  // Python integers are unbounded; past int64 there is no faithful answer here.
  auto overflow = []() -> Value { runtime_error("integer overflow (Python big integers are not supported)"); };
  int64_t r = 0;
  if (op == "-") {
    if (floats) return Value::floating(a.as_double() - b.as_double());
    if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return overflow();
    return Value::integer(r);
  }
  if (op == "*") {
    if (floats) return Value::floating(a.as_double() * b.as_double());
    if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return overflow();
    return Value::integer(r);
  }
  if (op == "/" || op == "//" || op == "%") {
    if (b.as_double() == 0) runtime_error("ZeroDivisionError: division by zero");
  }
  if (op == "/") return Value::floating(a.as_double() / b.as_double());
  if (op == "//") {
    if (floats) return Value::floating(std::floor(a.as_double() / b.as_double()));
    int64_t q = a.as_int() / b.as_int();
    if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;
    return Value::integer(q);
  }
  if (op == "%") {
    if (floats) {
      double r = std::fmod(a.as_double(), b.as_double());
      if (r != 0 && ((r < 0) != (b.as_double() < 0))) r += b.as_double();
      return Value::floating(r);
    }
    int64_t r = a.as_int() % b.as_int();
    if (r != 0 && ((r < 0) != (b.as_int() < 0))) r += b.as_int();
    return Value::integer(r);
  }
  if (op == "**") {
    if (!floats && b.as_int() >= 0) {
      int64_t acc = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; --e) {
        if (__builtin_mul_overflow(acc, base, &acc)) runtime_error("integer overflow (Python big integers are not supported)");
        if (acc == 0 || acc == 1) break;  // 0 ** n, 1 ** n
        if (acc == -1) {
          acc = ((e - 1) % 2 == 0) ? -1 : 1;
          break;
        }
      }
      return Value::integer(acc);
    }
    return Value::floating(std::pow(a.as_double(), b.as_double()));
  }
  return unsupported();
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) throw_type_error("'in <string>' requires string as left operand, not " + item.type_name());
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kDict: return container.find(item) != nullptr;
    case Value::Kind::kList:
      for (const Value& x : container.items()) {
        if (values_equal(x, item)) return true;
      }
      return false;
    default: throw_type_error("argument of type '" + container.type_name() + "' is not iterable");
  }
}

}  // namespace

std::string Interpreter::render(const Body& body, const std::vector<std::pair<std::string, Value>>& variables) {
  auto root = std::make_shared<Frame>();
  for (const auto& [k, v] : variables) root->vars[k] = v;
  std::string out;
  exec(body, root, out);
  return out;
}

Interpreter::Flow Interpreter::exec(const Body& body, const FramePtr& frame, std::string& out) {
  for (const auto& s : body) {
    Flow f = exec_stmt(*s, frame, out);
    if (f != Flow::kNormal) return f;
    if (static_cast<int64_t>(out.size()) > options_.max_output_bytes) runtime_error("rendered prompt exceeds the size limit");
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s, const FramePtr& frame, std::string& out) {
  switch (s.kind) {
    case Stmt::Kind::kText: out += s.text; return Flow::kNormal;
    case Stmt::Kind::kOutput: {
      Value v = eval(*s.expr, frame);
      if (!v.is_undefined()) out += v.to_str();
      return Flow::kNormal;
    }
    case Stmt::Kind::kIf:
      for (const auto& [cond, body] : s.branches) {
        if (eval(*cond, frame).truthy()) return exec(body, frame, out);
      }
      return exec(s.else_body, frame, out);
    case Stmt::Kind::kFor: return exec_for(s, frame, out);
    case Stmt::Kind::kSet: exec_set(s, frame); return Flow::kNormal;
    case Stmt::Kind::kSetBlock: {
      auto child = std::make_shared<Frame>();
      child->parent = frame;
      std::string text;
      exec(s.body, child, text);
      Value v = Value::string(std::move(text));
      frame->vars[s.targets[0]] = s.filter ? apply_filter_chain(*s.filter, frame, &v) : v;
      return Flow::kNormal;
    }
    case Stmt::Kind::kMacro: frame->vars[s.targets[0]] = make_macro(s, frame); return Flow::kNormal;
    case Stmt::Kind::kCallBlock: {
      Value caller = make_macro(s, frame, &s);
      const Expr& call = *s.expr;
      Value fn = eval(*call.a, frame);
      check_defined(fn);
      if (!fn.is_function()) throw_type_error("'" + fn.type_name() + "' object is not callable");
      CallArgs args = eval_args(call, frame);
      args.keyword.emplace_back("caller", caller);
      out += fn.fn().call(args).to_str();
      return Flow::kNormal;
    }
    case Stmt::Kind::kFilterBlock: {
      auto child = std::make_shared<Frame>();
      child->parent = frame;
      std::string text;
      exec(s.body, child, text);
      Value v = Value::string(std::move(text));
      out += apply_filter_chain(*s.filter, frame, &v).to_str();
      return Flow::kNormal;
    }
    case Stmt::Kind::kBreak: return Flow::kBreak;
    case Stmt::Kind::kContinue: return Flow::kContinue;
    case Stmt::Kind::kScope: {
      auto child = std::make_shared<Frame>();
      child->parent = frame;
      return exec(s.body, child, out);
    }
  }
  return Flow::kNormal;
}

namespace {

void bind_targets(const std::vector<std::string>& targets, const Value& item, Frame& frame) {
  if (targets.size() == 1) {
    frame.vars[targets[0]] = item;
    return;
  }
  List parts = item.is_list() ? item.items() : item.iterate();
  if (parts.size() != targets.size()) {
    runtime_error(parts.size() > targets.size()
                      ? "ValueError: too many values to unpack (expected " + std::to_string(targets.size()) + ")"
                      : "ValueError: not enough values to unpack (expected " + std::to_string(targets.size()) +
                            ", got " + std::to_string(parts.size()) + ")");
  }
  for (size_t i = 0; i < targets.size(); ++i) frame.vars[targets[i]] = parts[i];
}

}  // namespace

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const FramePtr& frame, std::string& out) {
  Value seq = eval(*s.expr, frame);
  List items = seq.iterate();  // Undefined: empty; None or a number: TypeError
  if (s.cond) {
    List kept;
    for (const Value& item : items) {
      auto f = std::make_shared<Frame>();
      f->parent = frame;
      bind_targets(s.targets, item, *f);
      if (eval(*s.cond, f).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.else_body, frame, out);
  const int64_t n = static_cast<int64_t>(items.size());
  if ((num_iterations_ += n) > options_.max_loop_iterations) runtime_error("template loops too long (iteration limit)");
  for (int64_t i = 0; i < n; ++i) {
    auto f = std::make_shared<Frame>();
    f->parent = frame;
    bind_targets(s.targets, items[i], *f);
    Dict loop = {
        {Value::string("index0"), Value::integer(i)},
        {Value::string("index"), Value::integer(i + 1)},
        {Value::string("revindex0"), Value::integer(n - i - 1)},
        {Value::string("revindex"), Value::integer(n - i)},
        {Value::string("first"), Value::boolean(i == 0)},
        {Value::string("last"), Value::boolean(i == n - 1)},
        {Value::string("length"), Value::integer(n)},
        {Value::string("depth"), Value::integer(1)},
        {Value::string("depth0"), Value::integer(0)},
        {Value::string("previtem"), i > 0 ? items[i - 1] : Value::undefined("there is no previous item")},
        {Value::string("nextitem"), i + 1 < n ? items[i + 1] : Value::undefined("there is no next item")},
        {Value::string("cycle"), Value::function("cycle", [i](const CallArgs& a) {
           if (a.positional.empty()) runtime_error("no items for cycling given");
           return a.positional[static_cast<size_t>(i) % a.positional.size()];
         })},
    };
    f->vars["loop"] = Value::dict(std::move(loop));
    Flow flow = exec(s.body, f, out);
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& s, const FramePtr& frame) {
  Value v = eval(*s.expr, frame);
  if (!s.attr.empty()) {
    Value ns = lookup(s.targets[0], frame);
    if (!ns.is_namespace()) runtime_error("cannot assign attribute on non-namespace object");
    ns.set(Value::string(s.attr), v);
    return;
  }
  bind_targets(s.targets, v, *frame);
}

Value Interpreter::make_macro(const Stmt& s, const FramePtr& frame, const Stmt* caller_of) {
  // A weak reference: the macro lives in the frame it captures.
  std::weak_ptr<Frame> weak = frame;
  std::string name = caller_of ? "caller" : s.targets[0];
  return Value::function(name, [this, &s, weak, name](const CallArgs& a) -> Value {
    FramePtr def = weak.lock();
    if (!def) runtime_error("macro '" + name + "' called outside its scope");
    if (call_depth_ >= options_.max_call_depth) runtime_error("macro recursion too deep in '" + name + "'");
    auto f = std::make_shared<Frame>();
    f->parent = def;
    List varargs;
    Dict kwargs;
    std::vector<bool> bound(s.params.size(), false);
    for (size_t i = 0; i < a.positional.size(); ++i) {
      if (i < s.params.size()) {
        f->vars[s.params[i].name] = a.positional[i];
        bound[i] = true;
      } else {
        varargs.push_back(a.positional[i]);
      }
    }
    for (const auto& [k, v] : a.keyword) {
      bool matched = false;
      for (size_t i = 0; i < s.params.size(); ++i) {
        if (s.params[i].name == k) {
          f->vars[k] = v;
          bound[i] = matched = true;
        }
      }
      if (!matched) {
        if (k == "caller") f->vars["caller"] = v;
        else kwargs.emplace_back(Value::string(k), v);
      }
    }
    for (size_t i = 0; i < s.params.size(); ++i) {
      if (bound[i]) continue;
      f->vars[s.params[i].name] = s.params[i].default_value
                                      ? eval(*s.params[i].default_value, f)
                                      : Value::undefined("parameter '" + s.params[i].name + "' was not provided");
    }
    f->vars["varargs"] = Value::list(std::move(varargs));
    f->vars["kwargs"] = Value::dict(std::move(kwargs));
    std::string text;
    ++call_depth_;
    try {
      exec(s.body, f, text);
    } catch (...) {
      --call_depth_;
      throw;
    }
    --call_depth_;
    return Value::string(std::move(text));
  });
}

Value Interpreter::lookup(const std::string& name, const FramePtr& frame) const {
  for (const Frame* f = frame.get(); f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return it->second;
  }
  return global(name);
}

Value Interpreter::global(const std::string& name) const {
  if (name == "raise_exception") {
    return Value::function(name, [](const CallArgs& a) -> Value {
      const Value* m = a.get(0, "message");
      throw RenderError(RenderError::Kind::kRaise, m ? m->to_str() : "");
    });
  }
  if (name == "strftime_now") {
    auto fn = options_.strftime_now;
    return Value::function(name, [fn](const CallArgs& a) -> Value {
      const Value* f = a.get(0, "format");
      if (!f || !f->is_string()) throw_type_error("strftime_now() needs a format string");
      if (!fn) runtime_error("strftime_now is not available");
      return Value::string(fn(f->str()));
    });
  }
  if (name == "namespace" || name == "dict") {
    bool ns = name == "namespace";
    return Value::function(name, [ns](const CallArgs& a) {
      Dict d;
      for (const Value& p : a.positional) {
        if (!p.is_dict()) throw_type_error("namespace()/dict() positional argument must be a mapping");
        d.insert(d.end(), p.entries().begin(), p.entries().end());
      }
      for (const auto& [k, v] : a.keyword) d.emplace_back(Value::string(k), v);
      return ns ? Value::make_namespace(std::move(d)) : Value::dict(std::move(d));
    });
  }
  if (name == "range") {
    return Value::function(name, [](const CallArgs& a) {
      int64_t start = 0, stop = 0, step = 1;
      for (const Value& v : a.positional) {
        if (!v.is_int() && !v.is_bool()) throw_type_error("'" + v.type_name() + "' object cannot be interpreted as an integer");
      }
      if (a.positional.size() == 1) stop = a.positional[0].as_int();
      else if (a.positional.size() >= 2) {
        start = a.positional[0].as_int();
        stop = a.positional[1].as_int();
        if (a.positional.size() > 2) step = a.positional[2].as_int();
      } else {
        throw_type_error("range expected at least 1 argument, got 0");
      }
      if (step == 0) runtime_error("ValueError: range() arg 3 must not be zero");
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (out.size() >= 100000) runtime_error("range() is too large for a chat template");
        out.push_back(Value::integer(i));
      }
      return Value::list(std::move(out));
    });
  }
  return Value::undefined("'" + name + "' is undefined");
}

CallArgs Interpreter::eval_args(const Expr& e, const FramePtr& frame) {
  CallArgs args;
  for (const auto& a : e.args) args.positional.push_back(eval(*a, frame));
  for (const auto& [k, a] : e.kwargs) args.keyword.emplace_back(k, eval(*a, frame));
  return args;
}

Value Interpreter::apply_filter_chain(const Expr& f, const FramePtr& frame, const Value* subject) {
  Value v = f.a ? (f.a->kind == Expr::Kind::kFilter ? apply_filter_chain(*f.a, frame, subject) : eval(*f.a, frame))
                : *subject;
  return apply_filter(f.name, v, eval_args(f, frame));
}

Value Interpreter::eval_call(const Expr& e, const FramePtr& frame) {
  Value fn = eval(*e.a, frame);
  check_defined(fn);
  if (!fn.is_function()) throw_type_error("'" + fn.type_name() + "' object is not callable");
  return fn.fn().call(eval_args(e, frame));
}

Value Interpreter::eval_binary(const Expr& e, const FramePtr& frame) {
  const std::string& op = e.name;
  if (op == "and") {
    Value a = eval(*e.a, frame);
    return a.truthy() ? eval(*e.b, frame) : a;
  }
  if (op == "or") {
    Value a = eval(*e.a, frame);
    return a.truthy() ? a : eval(*e.b, frame);
  }
  Value a = eval(*e.a, frame);
  Value b = eval(*e.b, frame);
  if (op == "~") return Value::string(a.to_str() + b.to_str());
  if (op == "==") return Value::boolean(values_equal(a, b));
  if (op == "!=") return Value::boolean(!values_equal(a, b));
  if (op == "in") return Value::boolean(contains(b, a));
  if (op == "not in") return Value::boolean(!contains(b, a));
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    check_defined(a);
    check_defined(b);
    int c = compare_values(a, b);
    if (op == "<") return Value::boolean(c < 0);
    if (op == "<=") return Value::boolean(c <= 0);
    if (op == ">") return Value::boolean(c > 0);
    return Value::boolean(c >= 0);
  }
  return arithmetic(op, a, b);
}

Value Interpreter::eval(const Expr& e, const FramePtr& frame) {
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.literal;
    case Expr::Kind::kName: return lookup(e.name, frame);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      List items;
      for (const auto& a : e.args) items.push_back(eval(*a, frame));
      return e.kind == Expr::Kind::kTuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case Expr::Kind::kDict: {
      Value d = Value::dict();
      for (const auto& [k, v] : e.pairs) d.set(eval(*k, frame), eval(*v, frame));
      return d;
    }
    case Expr::Kind::kGetAttr: return get_attribute(eval(*e.a, frame), e.name);
    case Expr::Kind::kGetItem: return get_item(eval(*e.a, frame), eval(*e.b, frame));
    case Expr::Kind::kSlice: {
      Value obj = eval(*e.a, frame);
      Value start = e.b ? eval(*e.b, frame) : Value();
      Value stop = e.c ? eval(*e.c, frame) : Value();
      Value step = e.args.empty() ? Value() : eval(*e.args[0], frame);
      return get_slice(obj, start, stop, step);
    }
    case Expr::Kind::kCall: return eval_call(e, frame);
    case Expr::Kind::kFilter: return apply_filter_chain(e, frame, nullptr);
    case Expr::Kind::kTest: {
      Value v = eval(*e.a, frame);
      return Value::boolean(apply_test(e.name, v, eval_args(e, frame)) != e.negated);
    }
    case Expr::Kind::kUnary: {
      Value v = eval(*e.a, frame);
      if (e.name == "not") return Value::boolean(!v.truthy());
      check_defined(v);
      if (!v.is_number()) throw_type_error("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.is_float() ? v : Value::integer(v.as_int());
      return v.is_float() ? Value::floating(-v.as_double()) : Value::integer(-v.as_int());
    }
    case Expr::Kind::kBinary: return eval_binary(e, frame);
    case Expr::Kind::kCondExpr:
      if (eval(*e.b, frame).truthy()) return eval(*e.a, frame);
      return e.c ? eval(*e.c, frame) : Value::undefined("the inline if-expression evaluated to false");
  }
  return Value();
}

}  // namespace tandem::jinja
