// Jinja lexer with the whitespace rules transformers configures: trim_blocks
// (one "\n" after a block or comment tag is dropped), lstrip_blocks (spaces
// and tabs before a block or comment tag at the start of a line are dropped),
// `-` / `+` modifiers on tags, newlines normalized to "\n" and one trailing
// newline of the source dropped (keep_trailing_newline=False).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tandem::jinja {

struct Token {
  enum class Kind {
    kText,        // literal template data (whitespace control already applied)
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,      // value already unescaped
    kInteger,
    kFloat,
    kOperator,    // + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : | ;
    kEof,
  };
  Kind kind;
  std::string value;
  int line = 1;
};

StatusOr<std::vector<Token>> tokenize(const std::string& source);

}  // namespace tandem::jinja
