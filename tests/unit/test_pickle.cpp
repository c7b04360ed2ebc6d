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

// Found by the fuzz_pickle seeds (tests/fuzz/corpus/pickle/seed-memo): a list that holds itself (legal in Python,
// never in a state dict) leaked its memory and made to_state_dict's recursive walk loop forever; a chain of
// containers nested tens of thousands deep overflowed the stack when walked or released. Both are refused now and
// the refused values are released without recursion (AddressSanitizer's leak check and UBSan in scripts/asan.sh).
TEST(Pickle, RefusesReferenceCyclesAndDeepNesting) {
  using namespace std::string_literals;  // the programs hold NUL bytes
  // EMPTY_LIST, BINPUT 0, MARK, BINGET 0, BINGET 0, APPENDS, STOP: l = []; l += [l, l]
  const std::string cycle = kProto + "]q\x00(h\x00h\x00"s + "e.";
  EXPECT_NE(refuse(cycle).find("reference cycle"), std::string::npos);
  // A dict whose value is the dict itself, through SETITEM.
  const std::string dict_cycle = kProto + "}q\x00"s + ustr("self") + "h\x00s."s;
  EXPECT_NE(refuse(dict_cycle).find("reference cycle"), std::string::npos);
  // 100000 nested one-element tuples (TUPLE1): deeper than the limit; refused, and released without recursing.
  std::string deep = kProto + "N" + std::string(100000, '\x85') + ".";
  EXPECT_NE(refuse(deep).find("nested deeper"), std::string::npos);
  // A cycle left in the memo while the result is something else is released too (no leak), and the result stands.
  const std::string memo_cycle = kProto + "]q\x00h\x00"s + "a0" + int1(7) + ".";
  EXPECT_EQ(run(memo_cycle)->i, 7);
  // Found by fuzz_pickle (corpus/pickle/crash-leak-dropped-cycle): a cycle made with DUP + APPEND and then popped
  // off the stack is held by nothing the machine tracks, and leaked. Every list/dict that was appended to is now
  // emptied unless the result holds it.
  const std::string dropped = kProto + "]2a0" + int1(7) + ".";
  EXPECT_EQ(run(dropped)->i, 7);
  // 100000 nested tuples popped and dropped while the program runs: released without recursing per level.
  EXPECT_EQ(run(kProto + "N" + std::string(100000, '\x85') + "0" + int1(3) + ".")->i, 3);
  // Nesting up to the limit is fine.
  std::string ok = kProto + "N" + std::string(200, '\x85') + ".";
  EXPECT_NO_THROW(run(ok));
}
