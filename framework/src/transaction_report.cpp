// The spellings of the report's enums and the report's text for an operator's console.
#include "nonstop/transaction_report.hpp"

#include "nonstop/release_transition.hpp"

#include <sstream>

namespace nonstop {

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::committed: return "committed";
        case Outcome::aborted: return "aborted";
        case Outcome::rejected: return "rejected";
    }
    return "?";
}

const char* to_string(Mode m) { return m == Mode::sequential ? "sequential" : "concurrent"; }

const char* to_string(Action a) {
    switch (a) {
        case Action::load: return "load";
        case Action::unload: return "unload";
        case Action::replace: return "replace";
        case Action::enable: return "enable";
        case Action::disable: return "disable";
    }
    return "?";
}

const char* to_string(Vote v) {
    switch (v) {
        case Vote::none: return "";
        case Vote::yes: return "yes";
        case Vote::no: return "no";
    }
    return "?";
}

const char* to_string(ReleaseState s) {
    switch (s) {
        case ReleaseState::provisional: return "provisional";
        case ReleaseState::permanent: return "permanent";
        case ReleaseState::rolled_back: return "rolled back";
    }
    return "?";
}

namespace {
std::string ms(std::chrono::nanoseconds d) {
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(3);
    out << std::chrono::duration<double, std::milli>(d).count() << " ms";
    return out.str();
}
}  // namespace

std::string TransactionReport::to_string() const {
    std::ostringstream out;
    out << "#" << id << " " << command << ": " << nonstop::to_string(outcome);
    if (!reason.empty()) out << " (" << reason << ")";
    out << " in " << ms(duration);
    if (waited.count() > 0) out << ", waited " << ms(waited) << " for an earlier transaction";
    out << "\n";
    if (undoes != 0)
        out << "  rolls back #" << undoes << ", rule " << rule
            << (evidence.empty() ? std::string() : ": " + evidence) << "\n";
    if (probation.count() > 0 && ok())
        out << "  provisional for " << probation.count() / 1000.0
            << " s: accept or rollback; the health rules watch it\n";
    for (const auto& t : targets) {
        out << "  " << nonstop::to_string(t.action) << " " << t.name;
        if (!t.old_version.empty() || !t.new_version.empty())
            out << " " << (t.old_version.empty() ? "-" : t.old_version) << " -> "
                << (t.new_version.empty() ? "-" : t.new_version);
        if (t.vote != Vote::none)
            out << " vote " << nonstop::to_string(t.vote) << ", quiescent after "
                << ms(t.quiescence) << ", state " << t.checkpoint_bytes << " B, buffered "
                << t.buffered << ", blackout " << ms(t.blackout);
        if (!t.old_kind.empty() && !t.new_kind.empty() && t.old_kind != t.new_kind)
            out << ", kind " << t.old_kind << " -> " << t.new_kind << " (forced)";
        if (t.forced && t.state_transfer.empty())
            out << ", forced: no checkpoint, " << t.dropped << " message(s) dropped";
        if (!t.state_transfer.empty()) out << ", state: " << t.state_transfer;
        if (t.discarded > 0) out << ", effects of " << t.discarded << " message(s) discarded";
        if (!t.abandoned_version.empty())
            out << ", version " << t.abandoned_version << " abandoned in " << t.abandoned_in
                << "()";
        if (t.preflight) out << ", preflight " << ms(t.preflight_time);
        if (t.preflight_state) out << " + state check " << ms(t.preflight_state_time);
        out << "\n";
    }
    return out.str();
}

}  // namespace nonstop
