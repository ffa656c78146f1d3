#include "nonstop/lifecycle_printer.hpp"

namespace nonstop {

std::string LifecyclePrinter::line(const LifecycleEvent& e) {
    const std::string who = e.module + " V" + e.version;
    // How the thesis punctuates each step; its spacing quirks are kept so the output can be
    // compared with the figures line by line.
    switch (e.step) {
        case Step::init: return who + ": init..";
        case Step::wait_to_start: return who + ": wait to start";
        case Step::start: return who + ": start..";
        case Step::enable: return who + ": enable..";
        case Step::disable: return who + ": disable..";
        case Step::will_term: return who + ": will term..";
        case Step::get_term: return who + " get TERM message";
        case Step::quiescent: return who + ": reach quiescent state..";
        case Step::put_state: return who + ": put state..";
        case Step::prepared: return who + " : is prepared for a transaction..";
        case Step::timeout: return who + " : is timeout for preparing a transaction..";
        case Step::get_state: return who + ": get state..";
        case Step::commit: return who + ": commit replacement..";
        case Step::hot_swapped: return e.module + " : is hot swapped..";
        case Step::abort: return who + ": abort transaction..";
        case Step::unloaded: return who + ": is unloaded from memory..";
    }
    return who + ": " + to_string(e.step) + "..";
}

}  // namespace nonstop
