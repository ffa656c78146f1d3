// A snapshot of one row of the event table (thesis table 4.7).
#pragma once

#include <string>
#include <vector>

namespace nonstop {

struct EventTag {
    std::string publisher;
    std::string event;
    bool published = false;  // false: subscribers wait for a publisher that is not (yet) there
    std::vector<std::string> subscribers;
};

}  // namespace nonstop
