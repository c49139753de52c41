#pragma once
// The journal's framing and binary codec (docs/results-schema.md, "Journal
// format"; internal to io/): records of magic, u64 payload length, payload and
// CRC-32, integers little-endian, doubles as their raw bits.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace satalab::detail {

inline constexpr std::size_t kFrameBytes = 4 + 8 + 4;  // magic, payload length, crc32

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320; zlib's crc32).
std::uint32_t crc32(const unsigned char* data, std::size_t size);

// Binary encoding of the journal (little-endian, doubles as raw bits).

class Encoder {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  void f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  void str(const std::string& s) {
    u64(s.size());
    out_ += s;
  }
  void doubles(const std::vector<double>& v) {
    u64(v.size());
    for (double x : v) f64(x);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

struct Corrupt {};  // thrown by Decoder on a malformed payload

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() {
    const std::string_view b = take(4);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    return v;
  }
  std::uint64_t u64() {
    const std::string_view b = take(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    return v;
  }
  double f64() {
    const std::uint64_t bits = u64();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    if (n > remaining()) throw Corrupt{};
    return std::string(take(static_cast<std::size_t>(n)));
  }
  std::vector<double> doubles() {
    const std::uint64_t n = u64();
    if (n > remaining() / 8) throw Corrupt{};
    std::vector<double> v(static_cast<std::size_t>(n));
    for (double& x : v) x = f64();
    return v;
  }
  std::size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view take(std::size_t n) {
    if (n > remaining()) throw Corrupt{};
    const std::string_view b = in_.substr(pos_, n);
    pos_ += n;
    return b;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
};

// One record: magic, length, payload, crc.
std::string frame(std::uint32_t magic, const std::string& payload);

// Writes all of `bytes` at `offset` (throws std::system_error).
void pwrite_all(int fd, const std::string& bytes, std::uint64_t offset);
// Reads exactly `size` bytes at `offset`; false when the file is shorter or on error.
bool pread_all(int fd, char* out, std::size_t size, std::uint64_t offset);

}  // namespace satalab::detail
