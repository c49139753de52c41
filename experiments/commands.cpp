#include "commands.hpp"

namespace satalab::cli {
int main(int, char**) { return 0; }
}  // namespace satalab::cli
