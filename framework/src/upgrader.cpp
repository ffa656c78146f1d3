#include "nonstop/upgrader.hpp"

#include <barrier>
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "module_task.hpp"
#include "nonstop/error.hpp"
#include "nonstop/module_proxy.hpp"
#include "nonstop/runtime.hpp"
#include "timer_service.hpp"

namespace nonstop {

using detail::Clock;
using detail::ModuleTask;

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::committed: return "committed";
        case Outcome::aborted: return "aborted";
        case Outcome::rejected: return "rejected";
    }
    return "?";
}

namespace {
// Why the module behind `proxy` cannot be the target of a transaction now; empty if it can.
std::string unavailable(const std::string& name, ModuleProxy& proxy, const ModuleInfo& info,
                        const char* verb) {
    if (info.in_transaction) return "module '" + name + "' is in a transaction";
    if (proxy.current().get() == ModuleTask::calling())
        return "module '" + name + "' cannot be " + verb +
               " from its own thread (it would wait for itself)";
    return {};
}

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
    for (const auto& t : targets) {
        out << "  " << t.action << " " << t.name;
        if (!t.old_version.empty() || !t.new_version.empty())
            out << " " << (t.old_version.empty() ? "-" : t.old_version) << " -> "
                << (t.new_version.empty() ? "-" : t.new_version);
        if (!t.vote.empty())
            out << " vote " << t.vote << ", quiescent after " << ms(t.quiescence) << ", state "
                << t.checkpoint_bytes << " B, buffered " << t.buffered << ", blackout "
                << ms(t.blackout);
        out << "\n";
    }
    return out.str();
}

// Holds the upgrader for one transaction and fills in the common parts of its report.
class Upgrader::Session {
public:
    Session(Upgrader& upgrader, std::string command) : upgrader_(upgrader) {
        report.command = std::move(command);
        report.started = std::chrono::system_clock::now();
        const auto asked = Clock::now();
        lock_ = std::unique_lock(upgrader.transaction_mutex_, std::try_to_lock);
        const bool waited = !lock_.owns_lock();
        if (waited) {
            ++upgrader.queued_;
            lock_.lock();
            --upgrader.queued_;
        }
        begin_ = Clock::now();
        if (waited) report.waited = begin_ - asked;
        report.id = upgrader.next_id_++;
        upgrader.runtime_.set_current_transaction(report.id);
        upgrader.announce(report, "validation");
    }
    TransactionReport done(Outcome outcome, std::string reason = {}) {
        report.outcome = outcome;
        report.reason = std::move(reason);
        report.duration = Clock::now() - begin_;
        upgrader_.announce(report, nonstop::to_string(outcome));
        upgrader_.runtime_.set_current_transaction(0);
        return upgrader_.record(report);
    }
    TransactionReport report;

private:
    Upgrader& upgrader_;
    std::unique_lock<std::mutex> lock_;
    Clock::time_point begin_;
};

Upgrader::Upgrader(Runtime& runtime)
    : runtime_(runtime), timeout_ms_(runtime.config().quiescence_timeout.count()) {}

TransactionReport Upgrader::record(TransactionReport report) {
    std::lock_guard lock(history_mutex_);
    history_.push_back(report);
    while (history_.size() > std::max<std::size_t>(1, runtime_.config().history_size))
        history_.pop_front();
    return report;
}

std::vector<TransactionReport> Upgrader::history(std::size_t count) const {
    std::lock_guard lock(history_mutex_);
    const std::size_t n = (count == 0 || count > history_.size()) ? history_.size() : count;
    return {history_.end() - static_cast<std::ptrdiff_t>(n), history_.end()};
}

void Upgrader::announce(const TransactionReport& report, const std::string& state) {
    Message m;
    m.payload = std::to_string(report.id) + " " + state + " " + report.command;
    runtime_.events().notify("upgrader", "transaction", m);
}

TransactionReport Upgrader::set_timer(std::chrono::milliseconds limit) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", static_cast<double>(limit.count()) / 1000.0);
    Session s(*this, std::string("set_timer ") + seconds);
    if (limit.count() <= 0)
        return s.done(Outcome::rejected, "the quiescence time limit must be positive");
    timeout_ms_ = limit.count();
    return s.done(Outcome::committed);
}

TransactionReport Upgrader::toggle(const std::string& name, bool enable) {
    Session s(*this, std::string(enable ? "enable " : "disable ") + name);
    auto proxy = runtime_.names().find(name);
    if (!proxy) return s.done(Outcome::rejected, "no module is named '" + name + "'");
    TargetReport t;
    t.name = name;
    t.action = enable ? "enable" : "disable";
    t.old_version = t.new_version = proxy->info().version;
    s.report.targets.push_back(t);
    try {
        enable ? proxy->enable() : proxy->disable();
    } catch (const Error& e) {
        return s.done(Outcome::rejected, e.what());
    }
    return s.done(Outcome::committed);
}

TransactionReport Upgrader::enable(const std::string& name) { return toggle(name, true); }
TransactionReport Upgrader::disable(const std::string& name) { return toggle(name, false); }

TransactionReport Upgrader::unload(const std::string& name) { return remove(name, timer()); }

TransactionReport Upgrader::remove(const std::string& name, std::chrono::milliseconds limit) {
    Session s(*this, "unload " + name);
    auto proxy = runtime_.names().find(name);
    if (!proxy) return s.done(Outcome::rejected, "no module is named '" + name + "'");
    TargetReport t;
    t.name = name;
    t.action = "unload";
    const ModuleInfo before = proxy->info();
    t.old_version = before.version;
    t.library = before.library;
    if (auto why = unavailable(name, *proxy, before, "removed"); !why.empty())
        return s.done(Outcome::rejected, why);
    // Removal protocol (thesis 3.6.3): unreachable by name, refuse new input, drain, remove.
    runtime_.names().remove(name);
    ModuleProxy::Vote vote;
    try {
        runtime_.trace(name, t.old_version, "disable");
        vote = proxy->prepare(limit, ModuleProxy::Intake::refuse);
    } catch (const Error& e) {
        runtime_.names().insert(proxy);
        return s.done(Outcome::rejected, e.what());
    }
    t.quiescence = vote.quiescence;
    t.vote = vote.yes ? "yes" : "no";
    if (!vote.yes) {
        proxy->abort();
        runtime_.names().insert(proxy);
        s.report.targets.push_back(t);
        return s.done(Outcome::aborted, vote.reason);
    }
    runtime_.timers().cancel(name);
    auto old = proxy->retire();
    runtime_.events().remove_module(name);
    old.reset();  // destroys the instance; the library unloads with its last instance
    runtime_.trace(name, t.old_version, "unloaded");
    s.report.targets.push_back(t);
    return s.done(Outcome::committed);
}

void Upgrader::unload_all() {
    for (const auto& name : runtime_.names().names()) {
        // Shutdown cannot leave a thread behind: past the usual limit, wait as long as the
        // module needs.
        if (remove(name, timer()).outcome == Outcome::aborted)
            remove(name, std::chrono::hours(24 * 365));
    }
}

TransactionReport Upgrader::load(const std::string& name, const std::string& library) {
    return run("load " + name + " " + library, {}, {{name, library}}, Mode::concurrent, false);
}

TransactionReport Upgrader::replace(const std::string& name, const std::string& library) {
    return run("replace " + name + " " + library, {{name, library}}, {}, Mode::concurrent, false);
}

namespace {
std::string describe(const char* verb, const std::vector<Upgrader::Change>& changes,
                     Upgrader::Mode mode) {
    std::string out = verb;
    if (mode == Upgrader::Mode::sequential) out += " -sequential";
    for (const auto& c : changes) out += " " + c.name + " " + c.library;
    return out;
}
}  // namespace

TransactionReport Upgrader::syn_replace(const std::vector<Change>& changes, Mode mode) {
    return run(describe("syn_replace", changes, mode), changes, {}, mode, false);
}

TransactionReport Upgrader::syn_load(const std::vector<Change>& changes, Mode mode) {
    return run(describe("syn_load", changes, mode), {}, changes, mode, false);
}

TransactionReport Upgrader::syn_upgrade(const std::vector<Change>& changes, Mode mode) {
    std::vector<Change> replacements, additions;
    for (const auto& c : changes)
        (runtime_.names().find(c.name) ? replacements : additions).push_back(c);
    return run(describe("syn_upgrade", changes, mode), replacements, additions, mode, true);
}

TransactionReport Upgrader::syn_upgrade(const std::vector<Change>& replacements,
                                        const std::vector<Change>& additions, Mode mode) {
    std::vector<Change> all = replacements;
    all.insert(all.end(), additions.begin(), additions.end());
    return run(describe("syn_upgrade", all, mode), replacements, additions, mode, true);
}

// One module of a transaction, carried by its slave thread.
struct Upgrader::Target {
    bool addition = false;
    Change change;
    std::shared_ptr<ModuleProxy> proxy;
    ModuleProxy::Task fresh;  // the new implementation
    ModuleProxy::Task old;    // the replaced one, destroyed after the start
    bool prepared = false;    // prepare() was called: the proxy must commit or abort
    std::string error;
    ModuleProxy::Vote vote;
    TargetReport report;
};

TransactionReport Upgrader::run(std::string command, const std::vector<Change>& replacements,
                                const std::vector<Change>& additions, Mode mode,
                                bool late_additions) {
    Session s(*this, std::move(command));
    s.report.mode = mode == Mode::concurrent ? "concurrent" : "sequential";
    const auto timeout = timer();

    // Validation check (figure 4.13).
    std::vector<Target> targets;
    std::set<std::string> seen;
    for (const auto& [list, addition] : {std::pair{&replacements, false}, {&additions, true}}) {
        for (const auto& c : *list) {
            if (c.name.empty()) return s.done(Outcome::rejected, "a module name is empty");
            if (!seen.insert(c.name).second)
                return s.done(Outcome::rejected, "module '" + c.name + "' is named twice");
            Target t;
            t.addition = addition;
            t.change = c;
            t.report.name = c.name;
            t.report.library = c.library;
            t.report.action = addition ? "load" : "replace";
            auto existing = runtime_.names().find(c.name);
            if (addition && existing)
                return s.done(Outcome::rejected, "a module named '" + c.name + "' already exists");
            if (!addition) {
                if (!existing) return s.done(Outcome::rejected, "no module is named '" + c.name + "'");
                const ModuleInfo info = existing->info();
                if (auto why = unavailable(c.name, *existing, info, "replaced"); !why.empty())
                    return s.done(Outcome::rejected, why);
                t.proxy = existing;
                t.report.old_version = info.version;
            } else {
                t.proxy = std::make_shared<ModuleProxy>(c.name, runtime_.config().queue_capacity);
            }
            targets.push_back(std::move(t));
        }
    }
    if (targets.empty()) return s.done(Outcome::rejected, "the command names no module");

    // Preparation: load the library, create the instance, run initialize() in its own thread.
    auto create = [&](Target& t) {
        try {
            auto library = runtime_.libraries().acquire(t.change.library);
            t.fresh = std::make_shared<ModuleTask>(runtime_, *t.proxy, library);
            t.report.new_version = library->version();
            t.fresh->launch();
            t.error = t.fresh->wait_initialized();
        } catch (const std::exception& e) {
            t.error = e.what();
        }
        if (!t.error.empty()) t.fresh.reset();
    };
    auto vote = [&](Target& t) {
        try {
            runtime_.trace(t.change.name, t.report.old_version, "disable");
            t.vote = t.proxy->prepare(timeout, ModuleProxy::Intake::buffer);
            t.prepared = true;
            if (t.vote.yes) {
                runtime_.trace(t.change.name, t.report.old_version, "put state");
                runtime_.trace(t.change.name, t.report.old_version, "prepared");
            } else if (t.vote.timed_out) {
                runtime_.trace(t.change.name, t.report.old_version, "timeout");
            }
        } catch (const std::exception& e) {
            t.vote.reason = e.what();
        }
        t.report.vote = t.vote.yes ? "yes" : "no";
        t.report.quiescence = t.vote.quiescence;
        t.report.checkpoint_bytes = t.vote.state.bytes.size();
        if (!t.vote.yes) t.error = t.vote.reason;
    };

    enum class Phase { create, vote, restore, complete, start };
    bool commit = true;
    std::string reason;
    auto first_error = [&] {
        for (auto& t : targets)
            if (!t.error.empty()) return t.error;
        return std::string();
    };
    // What one target does in one phase; runs on that target's slave thread (or in turn on
    // the master's, in sequential mode).
    auto step = [&](Phase phase, Target& t) {
        switch (phase) {
            case Phase::create:
                if (!t.addition || !late_additions) create(t);
                break;
            case Phase::vote:
                if (commit && !t.addition) vote(t);
                break;
            case Phase::restore:
                if (commit && !t.addition) {
                    runtime_.trace(t.change.name, t.report.new_version, "get state");
                    t.error = t.proxy->restore(*t.fresh, t.vote.state);
                }
                break;
            case Phase::complete:
                if (commit) {
                    if (t.addition) {
                        t.proxy->attach(t.fresh);
                        runtime_.names().insert(t.proxy);
                    } else {
                        runtime_.trace(t.change.name, t.report.old_version, "commit");
                        t.old = t.proxy->swap(t.fresh);
                        runtime_.trace(t.change.name, t.report.new_version, "hot swapped");
                    }
                } else {
                    if (t.prepared) {
                        runtime_.trace(t.change.name, t.report.old_version, "abort");
                        t.proxy->abort();
                    }
                    t.fresh.reset();  // ends its waiting thread; its library unloads with it
                }
                break;
            case Phase::start:
                if (commit) {
                    t.proxy->start();
                    if (t.old) {
                        // Destroyed after the start, so that unmapping the old library is not
                        // part of the blackout.
                        t.old.reset();
                        runtime_.trace(t.change.name, t.report.old_version, "unloaded");
                    }
                }
                break;
        }
    };
    // The master's decision after every target finished a phase (the barrier's completion).
    auto decide = [&](Phase phase) {
        if (!commit) return;
        if (phase == Phase::vote && late_additions) {
            // Figure 4.12: the additions load once every replaced module has voted yes.
            for (auto& t : targets)
                if (t.addition && first_error().empty()) create(t);
        }
        if (phase == Phase::create || phase == Phase::vote || phase == Phase::restore) {
            reason = first_error();
            commit = reason.empty();
        }
        // The upgrader's states of figure 4.13, for whoever follows transactions live.
        switch (phase) {
            case Phase::create: announce(s.report, commit ? "voting" : "cleanup"); break;
            case Phase::vote: if (!commit) announce(s.report, "abort"); break;
            case Phase::restore: announce(s.report, commit ? "commit" : "abort"); break;
            case Phase::complete: if (commit) announce(s.report, "start"); break;
            case Phase::start: break;
        }
    };
    const Phase phases[] = {Phase::create, Phase::vote, Phase::restore, Phase::complete,
                            Phase::start};

    announce(s.report, "preparation");
    if (mode == Mode::sequential || targets.size() == 1) {
        for (Phase phase : phases) {
            for (auto& t : targets) step(phase, t);
            decide(phase);
        }
    } else {
        std::size_t phase_index = 0;
        std::barrier sync(static_cast<std::ptrdiff_t>(targets.size()),
                          [&]() noexcept { decide(phases[phase_index++]); });
        std::vector<std::thread> slaves;
        slaves.reserve(targets.size());
        for (auto& t : targets) {
            slaves.emplace_back([&, target = &t] {
                for (Phase phase : phases) {
                    step(phase, *target);
                    sync.arrive_and_wait();
                }
            });
        }
        for (auto& slave : slaves) slave.join();
    }

    // The blackout of each replaced module: first buffered message → first one served.
    for (auto& t : targets) {
        if (commit && !t.addition) {
            t.report.buffered = t.proxy->buffered();
            if (t.report.buffered > 0) {
                const auto deadline = Clock::now() + runtime_.config().blackout_probe_limit;
                if (auto current = t.proxy->current())
                    if (auto served = current->wait_first_served(deadline))
                        t.report.blackout = *served - t.proxy->first_buffered();
            }
        }
        if (!commit) t.report.new_version.clear();
        s.report.targets.push_back(t.report);
    }
    return s.done(commit ? Outcome::committed : Outcome::aborted, reason);
}

}  // namespace nonstop
