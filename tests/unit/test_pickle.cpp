#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/error.h"
#include "io/pickle.h"

using emo::io::pickle::Value;
using emo::io::pickle::ValuePtr;

namespace {

// Tiny pickle assembler so test programs stay readable.
std::string op(char c) { return std::string(1, c); }
std::string ustr(const std::string& s) {  // BINUNICODE
  std::string o = "X";
  uint32_t n = static_cast<uint32_t>(s.size());
  o.append(reinterpret_cast<const char*>(&n), 4);
  return o + s;
}
std::string int1(uint8_t v) { return std::string("K") + static_cast<char>(v); }
const std::string kProto = std::string("\x80\x02", 2);
const std::string kTuple2 = std::string("\x86", 1);
const std::string kFalse = std::string("\x89", 1);

std::string storage_pid(int numel) {
  return "(" + ustr("storage") + "ctorch\nFloatStorage\n" + ustr("0") + ustr("cpu") + int1(numel) + "tQ";
}

ValuePtr run(const std::string& prog) {
  auto res = [](c10::ScalarType t, const std::string&, int64_t n, const ValuePtr&) {
    return torch::arange(n, torch::TensorOptions().dtype(torch::kFloat)).to(t);
  };
  return emo::io::pickle::load(reinterpret_cast<const uint8_t*>(prog.data()), prog.size(), res, "test.pkl");
}

std::string refuse(const std::string& prog) {
  try {
    run(prog);
  } catch (const emo::ModelError& e) {
    return e.what();
  }
  ADD_FAILURE() << "program was accepted";
  return "";
}

}  // namespace

TEST(Pickle, ParsesDictOfTensor) {
  // {'w': _rebuild_tensor_v2(storage(float, numel 6), 1, (2, 2), (2, 1), False, OrderedDict())}
  std::string p = kProto + "}" + ustr("w") + "ctorch._utils\n_rebuild_tensor_v2\n(" + storage_pid(6) + int1(1) +
                  int1(2) + int1(2) + kTuple2 + int1(2) + int1(1) + kTuple2 + kFalse +
                  "ccollections\nOrderedDict\n)R" + "tR" + "s.";
  auto v = run(p);
  ASSERT_TRUE(v->is(Value::Kind::kDict));
  ASSERT_EQ(v->dict.size(), 1u);
  auto t = v->dict[0].second->tensor;
  ASSERT_TRUE(t.defined());
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_FLOAT_EQ(t[1][1].item<float>(), 4.f);  // storage offset 1, strides (2, 1)
}

TEST(Pickle, RefusesArbitraryGlobals) {
  auto w = refuse(kProto + "cposix\nsystem\n" + ustr("id") + "\x85R.");
  EXPECT_NE(w.find("posix.system"), std::string::npos) << w;
  EXPECT_NE(refuse(kProto + "cbuiltins\neval\n.").find("builtins.eval"), std::string::npos);
  w = refuse(kProto + ustr("os") + ustr("system") + "\x93.");
  EXPECT_NE(w.find("os.system"), std::string::npos) << w;
}

TEST(Pickle, RefusesMalformedPrograms) {
  EXPECT_NE(refuse(kProto + "}").find("unexpected end"), std::string::npos);                  // no STOP
  EXPECT_NE(refuse(kProto + "h\x05.").find("memo index 5"), std::string::npos);               // undefined memo
  EXPECT_NE(refuse(kProto + "s.").find("underflow"), std::string::npos);                      // stack underflow
  EXPECT_NE(refuse(kProto + std::string("X\xff\xff\xff\x7f", 5) + "abc.").find("runs past"), std::string::npos);
  EXPECT_NE(refuse(kProto + "\xfe.").find("opcode 0xfe"), std::string::npos);                 // unknown opcode
  EXPECT_NE(refuse(kProto + int1(1) + int1(2) + ".").find("not balanced"), std::string::npos);
  EXPECT_NE(refuse(kProto + "N\x81.").find("underflow"), std::string::npos);
  EXPECT_NE(refuse(kProto + "N" + int1(1) + "b.").find("BUILD on a None"), std::string::npos);
}

TEST(Pickle, RefusesTensorViewOutsideStorage) {
  // storage of 4 elements, view of size (3, 3) stride (3, 1) -> addresses element 8.
  std::string p = kProto + "ctorch._utils\n_rebuild_tensor_v2\n(" + storage_pid(4) + int1(0) + int1(3) + int1(3) +
                  kTuple2 + int1(3) + int1(1) + kTuple2 + kFalse + "NtR.";
  auto w = refuse(p);
  EXPECT_NE(w.find("addresses element 8 of a storage of 4"), std::string::npos) << w;
}
