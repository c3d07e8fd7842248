// The parsed template: expressions and statements of the Jinja subset.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace tandem::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // literal
    kName,      // name
    kList,      // [args...]
    kTuple,     // (args...) — a list at run time
    kDict,      // {kwargs_expr: pairs}
    kGetAttr,   // a.name
    kGetItem,   // a[b]
    kSlice,     // a[b:c:d]; absent parts are null
    kCall,      // a(args, kwargs)
    kFilter,    // a | name(args, kwargs); a is null inside {% filter %}
    kTest,      // a is [not] name(args)
    kUnary,     // name in {not, -, +}, a
    kBinary,    // a name b; name in {+,-,*,/,//,%,**,~,and,or,==,!=,<,<=,>,>=,in,not in}
    kCondExpr,  // a if b else c (c may be null)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  bool negated = false;
  ExprPtr a, b, c;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  enum class Kind {
    kText,        // text
    kOutput,      // {{ expr }}
    kIf,          // branches (cond, body)...; else_body
    kFor,         // targets in expr [if cond] [recursive]: body else else_body
    kSet,         // targets (or target.attr) = expr
    kSetBlock,    // {% set name %}body{% endset %}, optional filter
    kMacro,       // name(params): body
    kCallBlock,   // {% call(params) expr %}body{% endcall %}
    kFilterBlock, // {% filter f %}body{% endfilter %}
    kBreak,
    kContinue,
    kScope,       // body in a scope of its own ({% generation %})
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<std::string> targets;
  std::string attr;  // kSet on namespace: targets[0].attr
  bool recursive = false;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  ExprPtr filter;  // kSetBlock / kFilterBlock: a filter chain applied to a null subject
};

}  // namespace tandem::jinja
