#include "memory/byte_size.h"

#include <gtest/gtest.h>

namespace tandem::memory {
namespace {

int64_t parse(const char* s) {
  auto r = parse_byte_size(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().to_string();
  return r.ok() ? *r : -1;
}

std::string error_of(const char* s) {
  auto r = parse_byte_size(s);
  EXPECT_FALSE(r.ok()) << s << " parsed as " << (r.ok() ? *r : 0);
  return r.ok() ? "" : r.status().message();
}

TEST(ByteSize, DecimalAndBinaryUnits) {
  EXPECT_EQ(parse("96GB"), 96'000'000'000);
  EXPECT_EQ(parse("96GiB"), 96LL << 30);
  EXPECT_EQ(parse("80 GiB"), 80LL << 30);
  EXPECT_EQ(parse("1KB"), 1000);
  EXPECT_EQ(parse("1KiB"), 1024);
  EXPECT_EQ(parse("3MB"), 3'000'000);
  EXPECT_EQ(parse("3MiB"), 3LL << 20);
  EXPECT_EQ(parse("2TB"), 2'000'000'000'000);
  EXPECT_EQ(parse("1TiB"), 1LL << 40);
  EXPECT_EQ(parse("123456"), 123456);
  EXPECT_EQ(parse("123456B"), 123456);
  EXPECT_EQ(parse("0"), 0);
}

TEST(ByteSize, CaseInsensitiveAndWhitespace) {
  EXPECT_EQ(parse("96gib"), 96LL << 30);
  EXPECT_EQ(parse(" 96 gb "), 96'000'000'000);
  EXPECT_EQ(parse("4mib"), 4LL << 20);
}

TEST(ByteSize, FractionsAreExact) {
  EXPECT_EQ(parse("1.5GiB"), 1610612736);
  EXPECT_EQ(parse("0.5KiB"), 512);
  EXPECT_EQ(parse("95.6GB"), 95'600'000'000);
  EXPECT_EQ(parse("3.875MiB"), 4063232);  // DeepSeek-33B's 16-token page
}

TEST(ByteSize, Errors) {
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("GiB").find("does not start with a number"), std::string::npos);
  EXPECT_NE(error_of("-5GB").find("negative"), std::string::npos);
  EXPECT_NE(error_of("96G").find("ambiguous"), std::string::npos);
  EXPECT_NE(error_of("96G").find("GiB"), std::string::npos);
  EXPECT_NE(error_of("10m").find("ambiguous"), std::string::npos);
  EXPECT_NE(error_of("96GX").find("unknown unit 'GX'"), std::string::npos);
  EXPECT_NE(error_of("1.5B").find("whole number of bytes"), std::string::npos);
  EXPECT_NE(error_of("99999999999999999999").find("too large"), std::string::npos);
  EXPECT_NE(error_of("9000000000TB").find("too large"), std::string::npos);
  EXPECT_NE(error_of("1.2.3GB").find("unknown unit"), std::string::npos);
}

TEST(ByteSize, Formatting) {
  EXPECT_EQ(format_binary(96LL << 30), "96.00 GiB");
  EXPECT_EQ(format_decimal(96'000'000'000), "96.00 GB");
  EXPECT_EQ(format_both(96'000'000'000), "96.00 GB (89.41 GiB)");
  EXPECT_EQ(format_binary(4063232), "3.88 MiB");
  EXPECT_EQ(format_binary(512), "512 B");
  EXPECT_EQ(format_binary(-(2LL << 20)), "-2.00 MiB");
}

}  // namespace
}  // namespace tandem::memory
