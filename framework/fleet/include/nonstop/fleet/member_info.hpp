// One member of a fleet as its ZooKeeper node describes it (`nonstop fleet members`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nonstop {

struct MemberModule {
    std::string name;
    std::string version;
    std::string sha256;  // of the library it runs
    std::uint64_t handled = 0;
    std::string status;
    std::string library;
};

struct MemberInfo {
    std::string id;
    std::string host;
    long pid = 0;
    std::string health;          // "ok", or one sentence on what is wrong
    std::uint64_t sessions = 0;  // ZooKeeper sessions this process has had (re-registrations + 1)
    std::vector<MemberModule> modules;
};

}  // namespace nonstop
