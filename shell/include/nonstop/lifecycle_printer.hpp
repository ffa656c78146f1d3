// The console lines of thesis figures 5.4-5.9 for the framework's lifecycle steps.
#pragma once

#include "nonstop/lifecycle_event.hpp"

#include <string>

namespace nonstop {

class LifecyclePrinter {
public:
    /// "IP V1: disable..", "IP : is hot swapped.." ...; a generic line for an unknown step.
    static std::string line(const LifecycleEvent& e);
};

}  // namespace nonstop
