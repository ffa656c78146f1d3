#include "lifecycle_printer.hpp"

#include <map>
#include <string_view>

namespace nonstop::router {

std::string LifecyclePrinter::line(const LifecycleEvent& e) {
    const std::string who = e.module + " V" + e.version;
    // How the thesis punctuates each step; its spacing quirks are kept so the output can be
    // compared with the figures line by line.
    static const std::map<std::string_view, std::string_view> suffix = {
        {"init", ": init.."},
        {"wait to start", ": wait to start"},
        {"start", ": start.."},
        {"resume", ": start.."},
        {"disable", ": disable.."},
        {"enable", ": enable.."},
        {"get TERM message", " get TERM message"},
        {"reach quiescent state", ": reach quiescent state.."},
        {"put state", ": put state.."},
        {"prepared", " : is prepared for a transaction.."},
        {"commit", ": commit replacement.."},
        {"get state", ": get state.."},
        {"unloaded", ": is unloaded from memory.."},
        {"abort", ": abort transaction.."},
        {"timeout", " : is timeout for preparing a transaction.."},
    };
    if (e.step == "hot swapped") return e.module + " : is hot swapped..";
    if (auto it = suffix.find(e.step); it != suffix.end()) return who + std::string(it->second);
    return who + ": " + e.step + "..";
}

}  // namespace nonstop::router
