#include "common/status.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

StatusOr<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("value must be positive, got " + std::to_string(v));
  return v;
}

Status use(int v, int* out) {
  ASSIGN_OR_RETURN(*out, parse_positive(v));
  return ok_status();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status().ok());
  Status s = not_found("model.safetensors");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.to_string(), "NOT_FOUND: model.safetensors");
}

TEST(StatusOr, PropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(use(3, &out).ok());
  EXPECT_EQ(out, 3);
  Status s = use(-1, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("-1"), std::string::npos);
}

}  // namespace
}  // namespace tandem
