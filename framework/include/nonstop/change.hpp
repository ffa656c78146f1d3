// One module of a group command: its name and the library of its new version.
#pragma once

#include <string>

namespace nonstop {

struct Change {
    std::string name;
    std::string library;
};

}  // namespace nonstop
