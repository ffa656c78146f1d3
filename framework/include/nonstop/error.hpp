// The one exception type the framework throws internally; its text is the one-sentence reason
// that reaches the operator. Each step of a transaction turns it into the report's reason once.
#pragma once

#include <stdexcept>
#include <string>

#include "nonstop/export.hpp"

namespace nonstop {

class NONSTOP_API Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace nonstop
