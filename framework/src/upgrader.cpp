#include "upgrader.hpp"

#include <cstdio>
#include <iostream>
#include <sstream>

#include "event_manager.hpp"
#include "graveyard.hpp"
#include "name_service.hpp"
#include "timer_service.hpp"

namespace nonstop::detail {

// Holds the upgrader for one command and fills in the common parts of its report.
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
        upgrader.announce(report, "validation");
    }
    TransactionReport done(Outcome outcome, std::string reason = {}) {
        report.outcome = outcome;
        report.reason = std::move(reason);
        report.duration = Clock::now() - begin_;
        upgrader_.announce(report, nonstop::to_string(outcome));
        return upgrader_.record(report);
    }
    TransactionReport report;

private:
    Upgrader& upgrader_;
    std::unique_lock<std::mutex> lock_;
    Clock::time_point begin_;
};

Upgrader::Upgrader(UpgraderParts parts)
    : parts_(parts), timeout_ms_(parts.config.quiescence_timeout.count()) {}

TransactionReport Upgrader::record(TransactionReport report) {
    std::lock_guard lock(history_mutex_);
    history_.push_back(report);
    while (history_.size() > std::max<std::size_t>(1, parts_.config.history_size))
        history_.pop_front();
    return report;
}

std::vector<TransactionReport> Upgrader::history(std::size_t count) const {
    std::lock_guard lock(history_mutex_);
    const std::size_t n = (count == 0 || count > history_.size()) ? history_.size() : count;
    return {history_.end() - static_cast<std::ptrdiff_t>(n), history_.end()};
}

void Upgrader::announce(const TransactionReport& report, const char* state) {
    if (!parts_.events.has_subscribers("upgrader", "transaction")) return;
    Message m;
    m.payload = std::to_string(report.id) + " " + state + " " + report.command;
    parts_.events.notify("upgrader", "transaction", m);
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
    auto proxy = parts_.names.find(name);
    if (!proxy) return s.done(Outcome::rejected, "no module is named '" + name + "'");
    TargetReport t;
    t.name = name;
    t.action = enable ? Action::enable : Action::disable;
    t.old_version = t.new_version = proxy->info().version;
    s.report.targets.push_back(t);
    try {
        enable ? proxy->enable(s.report.id) : proxy->disable(s.report.id);
    } catch (const Error& e) {
        return s.done(Outcome::rejected, e.what());
    }
    return s.done(Outcome::committed);
}

TransactionReport Upgrader::enable(const std::string& name) { return toggle(name, true); }
TransactionReport Upgrader::disable(const std::string& name) { return toggle(name, false); }

TransactionReport Upgrader::unload(const std::string& name, bool force) {
    return remove(name, timer(), force);
}

// Removal protocol (thesis 3.6.3): unreachable by name, refuse new input, drain, remove. With
// `force`, a module stuck in a handler is abandoned and its unserved messages are dropped.
TransactionReport Upgrader::remove(const std::string& name, std::chrono::milliseconds limit,
                                   bool force) {
    Session s(*this, std::string(force ? "unload -force " : "unload ") + name);
    auto proxy = parts_.names.find(name);
    if (!proxy) return s.done(Outcome::rejected, "no module is named '" + name + "'");
    const ModuleInfo before = proxy->info();
    TargetReport t;
    t.name = name;
    t.action = Action::unload;
    t.library = before.library;
    t.old_version = before.version;
    if (before.in_transaction)
        return s.done(Outcome::rejected, "module '" + name + "' is in a transaction");
    if (proxy->called_from_own_thread())
        return s.done(Outcome::rejected, "module '" + name +
                                             "' cannot be removed from its own thread (it "
                                             "would wait for itself)");
    parts_.names.remove(name);
    try {
        t.quiescence = proxy->prepare(limit, ModuleProxy::Intake::refuse, s.report.id).quiescence;
        t.vote = Vote::yes;
    } catch (const Timeout& e) {
        t.vote = Vote::no;
        if (force && force_removal(s, t, proxy)) return s.done(Outcome::committed);
        proxy->abort(s.report.id);  // not quiescent in time: it serves on
        proxy->start(s.report.id);
        parts_.names.insert(proxy);
        s.report.targets.push_back(t);
        return s.done(Outcome::aborted, e.what());
    } catch (const Error& e) {
        parts_.names.insert(proxy);
        return s.done(Outcome::rejected, e.what());
    }
    end_removed(s, t, proxy, proxy->retire(), 0);
    return s.done(Outcome::committed);
}

// The stuck implementation is abandoned; false when it is not stuck in a handler after all.
bool Upgrader::force_removal(Session& s, TargetReport& t, std::shared_ptr<ModuleProxy> proxy) {
    try {
        auto [stuck, dropped] = proxy->force_retire();
        t.forced = true;
        t.abandoned_version = t.old_version;
        t.abandoned_in = "handle";
        end_removed(s, t, std::move(proxy), std::move(stuck), dropped);
        return true;
    } catch (const Error&) {
        return false;
    }
}

void Upgrader::end_removed(Session& s, TargetReport& t, std::shared_ptr<ModuleProxy> proxy,
                           ModuleProxy::Task old, std::uint64_t dropped) {
    parts_.timers.cancel(t.name);
    parts_.events.remove_module(t.name);
    t.dropped = dropped;
    if (t.forced) {
        parts_.graveyard.bury(std::move(old), proxy);
    } else if (!parts_.graveyard.dispose(old, proxy, parts_.config.terminate_timeout)) {
        t.abandoned_version = t.old_version;
        t.abandoned_in = "terminate";
    }
    if (t.abandoned_version.empty() && parts_.host.tracing())
        parts_.host.trace(s.report.id, t.name, t.old_version, Step::unloaded);
    s.report.targets.push_back(t);
}

void Upgrader::unload_all() {
    for (const auto& name : parts_.names.names()) {
        // Shutdown cannot wait for ever: past the limit a module stuck in a handler is
        // abandoned; one that is only slow gets a second period to drain.
        auto report = remove(name, parts_.config.shutdown_timeout, true);
        if (report.outcome == Outcome::aborted)
            report = remove(name, parts_.config.shutdown_timeout, true);
        for (const auto& t : report.targets)
            if (!t.abandoned_version.empty() || t.dropped > 0)
                std::cerr << "nonstop: shutdown abandoned module '" << t.name << "' version "
                          << t.abandoned_version << " (still in " << t.abandoned_in << "()), "
                          << t.dropped << " message(s) unserved\n";
        if (report.outcome == Outcome::aborted)
            std::cerr << "nonstop: shutdown: " << report.to_string();
    }
    parts_.graveyard.reap();
}

TransactionReport Upgrader::load(const std::string& name, const std::string& library) {
    return run("load " + name + " " + library, {}, {{name, library}}, Mode::concurrent, false);
}

TransactionReport Upgrader::replace(const std::string& name, const std::string& library,
                                    bool force) {
    return run(std::string(force ? "replace -force " : "replace ") + name + " " + library,
               {{name, library}}, {}, Mode::concurrent, false, force);
}

namespace {
std::string describe(const char* verb, const std::vector<Change>& changes, Mode mode) {
    std::string out = verb;
    if (mode == Mode::sequential) out += " -sequential";
    for (const auto& c : changes) out += " " + c.name + " " + c.library;
    return out;
}
}  // namespace

TransactionReport Upgrader::syn_replace(const std::vector<Change>& changes, Mode mode,
                                        std::function<std::string()> agree) {
    return run(describe("syn_replace", changes, mode), changes, {}, mode, false, false,
               std::move(agree));
}

TransactionReport Upgrader::syn_load(const std::vector<Change>& changes, Mode mode) {
    return run(describe("syn_load", changes, mode), {}, changes, mode, false);
}

TransactionReport Upgrader::syn_upgrade(const std::vector<Change>& changes, Mode mode) {
    std::vector<Change> replacements, additions;
    for (const auto& c : changes)
        (parts_.names.find(c.name) ? replacements : additions).push_back(c);
    return run(describe("syn_upgrade", changes, mode), replacements, additions, mode, true);
}

TransactionReport Upgrader::syn_upgrade(const std::vector<Change>& replacements,
                                        const std::vector<Change>& additions, Mode mode) {
    std::vector<Change> all = replacements;
    all.insert(all.end(), additions.begin(), additions.end());
    return run(describe("syn_upgrade", all, mode), replacements, additions, mode, true);
}

TransactionReport Upgrader::run(std::string command, const std::vector<Change>& replacements,
                                const std::vector<Change>& additions, Mode mode,
                                bool late_additions, bool force,
                                std::function<std::string()> agree) {
    Session s(*this, std::move(command));
    parts_.graveyard.reap();
    s.report.mode = mode;
    Transaction transaction(parts_, s.report,
                            [this, &s](const char* state) { announce(s.report, state); });
    if (force) transaction.force();
    if (agree) transaction.agree(std::move(agree));
    try {
        transaction.validate(replacements, additions);
    } catch (const Error& e) {
        return s.done(Outcome::rejected, e.what());
    }
    std::string reason = transaction.run(mode, late_additions, timer());
    const Outcome outcome = reason.empty() ? Outcome::committed : Outcome::aborted;
    return s.done(outcome, std::move(reason));
}

}  // namespace nonstop::detail
