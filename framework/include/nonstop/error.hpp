// The one exception type the framework throws internally; its text is the one-sentence reason
// that reaches the operator.
#pragma once

#include <stdexcept>
#include <string>

namespace nonstop {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace nonstop
