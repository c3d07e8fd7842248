// Tree-walking renderer of a parsed template. Scoping follows jinja2: a `for`
// body gets a fresh scope per iteration (a `set` inside does not leak out),
// `if` shares its enclosing scope, a macro body sees its defining scope at call
// time; namespace() objects are the way to carry state out of a loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"

namespace tandem::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
};
using FramePtr = std::shared_ptr<Frame>;

struct InterpreterOptions {
  // strftime_now(format) global; the caller decides the clock (tests pin it).
  std::function<std::string(const std::string&)> strftime_now;
  int max_call_depth = 256;           // macro recursion limit
  int64_t max_output_bytes = 1 << 28;  // 256 MiB of rendered text
  int64_t max_loop_iterations = 10'000'000;  // all loops of one render together
};

class Interpreter {
 public:
  explicit Interpreter(InterpreterOptions options) : options_(std::move(options)) {}

  // Throws RenderError; ChatTemplate turns it into a Status.
  std::string render(const Body& body, const std::vector<std::pair<std::string, Value>>& variables);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec(const Body& body, const FramePtr& frame, std::string& out);
  Flow exec_stmt(const Stmt& s, const FramePtr& frame, std::string& out);
  Flow exec_for(const Stmt& s, const FramePtr& frame, std::string& out);
  void exec_set(const Stmt& s, const FramePtr& frame);
  Value make_macro(const Stmt& s, const FramePtr& frame, const Stmt* caller_of = nullptr);

  Value eval(const Expr& e, const FramePtr& frame);
  Value eval_binary(const Expr& e, const FramePtr& frame);
  Value eval_call(const Expr& e, const FramePtr& frame);
  CallArgs eval_args(const Expr& e, const FramePtr& frame);
  Value apply_filter_chain(const Expr& f, const FramePtr& frame, const Value* subject);

  Value lookup(const std::string& name, const FramePtr& frame) const;
  Value global(const std::string& name) const;

  InterpreterOptions options_;
  int call_depth_ = 0;
  int64_t num_iterations_ = 0;
};

}  // namespace tandem::jinja
