#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace tandem {
namespace {

using testing::edit_safetensors_header;
using testing::TempDir;

std::vector<uint8_t> f32_bytes(std::initializer_list<float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), std::data(v), out.size());
  return out;
}

TEST(Safetensors, RoundTrip) {
  TempDir dir("st");
  const std::string path = dir.file("a.safetensors");
  ASSERT_TRUE(write_safetensors(path, {{"x", DType::kF32, {2, 2}, f32_bytes({1, 2, 3, 4})},
                                       {"y", DType::kF16, {3}, {0, 0x3c, 0, 0xc0, 0, 0}},
                                       {"empty", DType::kF32, {0, 4}, {}}})
                  .ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ((*f)->entries().size(), 3u);
  const auto* x = (*f)->find("x");
  ASSERT_NE(x, nullptr);
  TensorView v = (*f)->view(*x);
  EXPECT_EQ(v.shape_string(), "[2, 2]");
  EXPECT_FLOAT_EQ(load_as_f32(v.data, v.dtype, 3), 4.0f);
  TensorView y = (*f)->view(*(*f)->find("y"));
  EXPECT_FLOAT_EQ(load_as_f32(y.data, y.dtype, 0), 1.0f);
  EXPECT_FLOAT_EQ(load_as_f32(y.data, y.dtype, 1), -2.0f);
  EXPECT_EQ((*f)->find("nope"), nullptr);
}

TEST(Safetensors, MetadataAndScalars) {
  TempDir dir("meta");
  const std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(write_safetensors(path, {{"s", DType::kF32, {}, f32_bytes({7})}}).ok());
  edit_safetensors_header(path, [](nlohmann::json& h) { h["__metadata__"] = {{"format", "pt"}}; });
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  TensorView s = (*f)->view(*(*f)->find("s"));
  EXPECT_EQ(s.numel(), 1);
  EXPECT_FLOAT_EQ(load_as_f32(s.data, s.dtype, 0), 7.0f);
}

TEST(Safetensors, ShardedCheckpoint) {
  TempDir dir("shards");
  ASSERT_TRUE(write_safetensors(dir.file("model-00001-of-00002.safetensors"),
                                {{"a", DType::kF32, {1}, f32_bytes({1})}})
                  .ok());
  ASSERT_TRUE(write_safetensors(dir.file("model-00002-of-00002.safetensors"),
                                {{"b", DType::kF32, {1}, f32_bytes({2})}})
                  .ok());
  testing::write_text(dir.file("model.safetensors.index.json"),
                      R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                          "b": "model-00002-of-00002.safetensors"}})");
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  auto b = (*ck)->get("b");
  ASSERT_TRUE(b.ok());
  EXPECT_FLOAT_EQ(load_as_f32(b->data, b->dtype, 0), 2.0f);
  EXPECT_NE((*ck)->file_of("b").find("model-00002-of-00002.safetensors"), std::string::npos);
  auto missing = (*ck)->get("c");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("tensor 'c' not found"), std::string::npos);
}

// Malformed files: each error is one line naming the file (and the tensor).
class SafetensorsBad : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("w.safetensors");
    ASSERT_TRUE(write_safetensors(path_, {{"first", DType::kF32, {4}, f32_bytes({1, 2, 3, 4})},
                                          {"second", DType::kF32, {2}, f32_bytes({5, 6})}})
                    .ok());
  }
  std::string open_error() {
    auto f = SafetensorsFile::open(path_);
    EXPECT_FALSE(f.ok());
    if (f.ok()) return "";
    const std::string m = f.status().message();
    EXPECT_EQ(m.find('\n'), std::string::npos);
    EXPECT_EQ(m.rfind(path_, 0), 0u) << m;  // starts with the file
    return m;
  }
  TempDir dir_{"stbad"};
  std::string path_;
};

TEST_F(SafetensorsBad, TooShort) {
  testing::write_text(path_, "abc");
  EXPECT_NE(open_error().find("truncated: 3 bytes"), std::string::npos);
}

TEST_F(SafetensorsBad, HeaderLengthPastEnd) {
  std::string b = testing::read_text(path_);
  b[5] = 1;  // header length += 2^40
  testing::write_text(path_, b);
  EXPECT_NE(open_error().find("runs past the end of the file"), std::string::npos);
}

TEST_F(SafetensorsBad, TruncatedData) {
  std::string b = testing::read_text(path_);
  testing::write_text(path_, b.substr(0, b.size() - 4));
  const std::string m = open_error();
  EXPECT_NE(m.find("tensor 'second'"), std::string::npos) << m;
  EXPECT_NE(m.find("out of range"), std::string::npos) << m;
}

TEST_F(SafetensorsBad, OffsetsOutOfRange) {
  edit_safetensors_header(path_, [](nlohmann::json& h) { h["second"]["data_offsets"] = {16, 1000024}; });
  const std::string m = open_error();
  EXPECT_NE(m.find("tensor 'second'"), std::string::npos) << m;
}

TEST_F(SafetensorsBad, OffsetsOverlap) {
  edit_safetensors_header(path_, [](nlohmann::json& h) { h["second"]["data_offsets"] = {8, 16}; });
  const std::string m = open_error();
  EXPECT_NE(m.find("overlap tensor 'first'"), std::string::npos) << m;
}

TEST_F(SafetensorsBad, ShapeDisagreesWithBytes) {
  edit_safetensors_header(path_, [](nlohmann::json& h) { h["first"]["shape"] = {3}; });
  const std::string m = open_error();
  EXPECT_NE(m.find("tensor 'first': dtype F32 and shape [3] need 12 bytes"), std::string::npos) << m;
}

TEST_F(SafetensorsBad, UnknownDtype) {
  edit_safetensors_header(path_, [](nlohmann::json& h) { h["first"]["dtype"] = "Q7"; });
  EXPECT_NE(open_error().find("tensor 'first': unsupported dtype 'Q7'"), std::string::npos);
}

TEST_F(SafetensorsBad, HeaderNotJson) {
  std::string b = testing::read_text(path_);
  b[8] = '[';
  b[9] = '!';
  testing::write_text(path_, b);
  EXPECT_NE(open_error().find("header is not a JSON object"), std::string::npos);
}

}  // namespace
}  // namespace tandem
