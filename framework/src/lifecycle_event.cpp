#include "nonstop/lifecycle_event.hpp"

namespace nonstop {

const char* to_string(Step step) {
    switch (step) {
        case Step::init: return "init";
        case Step::wait_to_start: return "wait to start";
        case Step::start: return "start";
        case Step::enable: return "enable";
        case Step::disable: return "disable";
        case Step::will_term: return "will term";
        case Step::get_term: return "get TERM message";
        case Step::quiescent: return "reach quiescent state";
        case Step::put_state: return "put state";
        case Step::prepared: return "prepared";
        case Step::timeout: return "timeout";
        case Step::get_state: return "get state";
        case Step::commit: return "commit";
        case Step::hot_swapped: return "hot swapped";
        case Step::abort: return "abort";
        case Step::unloaded: return "unloaded";
    }
    return "?";
}

}  // namespace nonstop
