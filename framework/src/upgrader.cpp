#include "upgrader.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>

#include "crash_recorder.hpp"
#include "event_manager.hpp"
#include "futex_hash.hpp"
#include "graveyard.hpp"
#include "name_service.hpp"
#include "nonstop/issuer.hpp"
#include "timer_service.hpp"
#include "version_repository.hpp"

namespace nonstop::detail {

// Holds the upgrader for one command and fills in the common parts of its report.
class Upgrader::Session {
public:
    Session(Upgrader& upgrader, std::string command) : upgrader_(upgrader) {
        report.command = std::move(command);
        report.issuer = current_issuer();
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
        upgrader_.persist(report);
        auto recorded = upgrader_.record(report);
        // A release's change of standing is told once the command's report is in the history
        // (still under the lock), so an observer that reads the history finds it there.
        for (const auto& t : transitions_) upgrader_.parts_.host.transition(t);
        return recorded;
    }
    /// Tells `t` once the command is done (see done()).
    void transition(ReleaseTransition t) { transitions_.push_back(std::move(t)); }
    TransactionReport report;

private:
    Upgrader& upgrader_;
    std::unique_lock<std::mutex> lock_;
    Clock::time_point begin_;
    std::vector<ReleaseTransition> transitions_;
};

Upgrader::Upgrader(UpgraderParts parts)
    : parts_(parts),
      timeout_ms_(parts.config.quiescence_timeout.count()),
      probation_ms_(parts.config.probation.count()),
      ledger_(parts.config.history_size) {}

// Under the transaction lock (from Session::done): the report, and for a committed command the
// release it produced, in one write each. A store that fails is named on stderr; the command
// has taken effect either way.
void Upgrader::persist(const TransactionReport& report) {
    if (parts_.store == nullptr) return;
    try {
        // Restarting the stored release and removing modules at shutdown change what runs, not
        // the release to come back to.
        if (!report.ok() || report.issuer == kRestoreIssuer || report.issuer == kShutdownIssuer) {
            parts_.store->record_report(report);
            return;
        }
        Release release = release_header();
        auto row = [&](const ModuleProxy& proxy) {
            const ModuleInfo i = proxy.info();
            release.modules.push_back({i.name, i.library, i.sha256, i.kind, i.version, i.enabled});
        };
        const bool whole = write_whole_.load();
        std::vector<std::string> removed;  // written whole: none
        if (whole) {
            for (const auto& name : parts_.names.names())
                if (auto proxy = parts_.names.find(name)) row(*proxy);
        } else {
            // Only the modules the command named, as they are now: beside 10,000 modules a
            // command writes its own rows, not 10,000.
            std::set<std::string> named;
            for (const auto& t : report.targets) named.insert(t.name);
            for (const auto& name : named) {
                if (auto proxy = parts_.names.find(name))
                    row(*proxy);
                else
                    removed.push_back(name);
            }
        }
        const auto stored =
            parts_.store->record_provisional(report, release, whole ? nullptr : &removed);
        write_whole_.store(false);
        // Under probation (one provisional release at a time, as OTP's one temporary release)
        // the store's provisional release is the latest snapshot; it becomes permanent when
        // the probation ends clean and is discarded when it is rolled back.
        if (report.probation.count() > 0)
            stored_[report.id] = stored;
        else if (!stored_.empty())
            stored_.begin()->second = stored;
        else
            settle(stored);
    } catch (const Error& e) {
        write_whole_.store(true);  // the next release is written whole, this one with it
        std::cerr << "nonstop: transaction " << report.id << " was not recorded: " << e.what()
                  << "\n";
    }
}

// A release's header: the quiescence limit, which can change at run time, and every Config
// limit as it was, for the record.
Release Upgrader::release_header() const {
    Release release;
    release.quiescence_ms = timer().count();
    const auto& c = parts_.config;
    release.limits = "quiescence=" + std::to_string(release.quiescence_ms) +
                     " initialize=" + std::to_string(c.initialize_timeout.count()) +
                     " state=" + std::to_string(c.state_timeout.count()) +
                     " enable=" + std::to_string(c.enable_timeout.count()) +
                     " terminate=" + std::to_string(c.terminate_timeout.count()) +
                     " shutdown=" + std::to_string(c.shutdown_timeout.count());
    return release;
}

// Probation 0: a committed transaction is permanent at once. This is the one call site that
// probation (issue 12 item 1) replaces: make_permanent when the period ends clean,
// discard_provisional when a rule rolls the transaction back.
void Upgrader::settle(std::int64_t transaction) { parts_.store->make_permanent(transaction); }

void Upgrader::store_transition(std::uint64_t transaction, ReleaseState to,
                                const std::string& why) {
    auto it = stored_.find(transaction);
    if (it == stored_.end() || parts_.store == nullptr) return;
    const std::int64_t stored = it->second;
    stored_.erase(it);
    try {
        if (to == ReleaseState::permanent)
            parts_.store->make_permanent(stored);
        else
            parts_.store->discard_provisional(stored, why);
    } catch (const Error& e) {
        std::cerr << "nonstop: transaction " << transaction << " was not recorded as "
                  << to_string(to) << ": " << e.what() << "\n";
    }
}

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
    if (parts_.store != nullptr && !parts_.names.names().empty()) {
        for (const auto& c : checkpoint({}))
            if (!c.error.empty())
                std::cerr << "nonstop: shutdown: no checkpoint saved: " << c.error << "\n";
    }
    IssuerScope scope(kShutdownIssuer);
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

TransactionReport Upgrader::load(const std::string& name, const std::string& library,
                                 const TransactionOptions& options) {
    return run("load " + name + " " + library, {}, {{name, library}}, Mode::concurrent, false,
               options);
}

TransactionReport Upgrader::replace(const std::string& name, const std::string& library,
                                    const TransactionOptions& options) {
    return run(std::string(options.force ? "replace -force " : "replace ") + name + " " + library,
               {{name, library}}, {}, Mode::concurrent, false, options);
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
                                        const TransactionOptions& options,
                                        std::function<std::string()> agree) {
    return run(describe("syn_replace", changes, mode), changes, {}, mode, false, options, {},
               std::move(agree));
}

TransactionReport Upgrader::syn_load(const std::vector<Change>& changes, Mode mode,
                                     const TransactionOptions& options) {
    return run(describe("syn_load", changes, mode), {}, changes, mode, false, options);
}

TransactionReport Upgrader::syn_upgrade(const std::vector<Change>& changes, Mode mode,
                                        const TransactionOptions& options) {
    std::vector<Change> replacements, additions;
    for (const auto& c : changes)
        (parts_.names.find(c.name) ? replacements : additions).push_back(c);
    return run(describe("syn_upgrade", changes, mode), replacements, additions, mode, true,
               options);
}

TransactionReport Upgrader::syn_upgrade(const std::vector<Change>& replacements,
                                        const std::vector<Change>& additions, Mode mode,
                                        const TransactionOptions& options) {
    std::vector<Change> all = replacements;
    all.insert(all.end(), additions.begin(), additions.end());
    return run(describe("syn_upgrade", all, mode), replacements, additions, mode, true, options);
}

TransactionReport Upgrader::run(std::string command, const std::vector<Change>& replacements,
                                const std::vector<Change>& additions, Mode mode,
                                bool late_additions, const TransactionOptions& options, Seeds seeds,
                                std::function<std::string()> agree) {
    Session s(*this, std::move(command));
    parts_.graveyard.reap();
    s.report.mode = mode;
    Transaction transaction(parts_, s.report,
                            [this, &s](const char* state) { announce(s.report, state); });
    if (options.force) transaction.force();
    // A state check asked for explicitly implies preflight; the Config's only applies with it.
    const bool state = options.preflight_state.value_or(parts_.config.preflight_state);
    const bool preflight = options.preflight_state.value_or(false) ||
                           options.preflight.value_or(parts_.config.preflight);
    if (preflight) transaction.preflight(state);
    if (!seeds.empty()) transaction.seed(std::move(seeds));
    if (agree) transaction.agree(std::move(agree));
    transaction.keep_checkpoints();  // for keep_release
    if (options.probation && options.probation->count() < 0)
        return s.done(Outcome::rejected, "the probation period cannot be negative");
    try {
        transaction.validate(replacements, additions);
    } catch (const Error& e) {
        return s.done(Outcome::rejected, e.what());
    }
    // One provisional release at a time (OTP: one temporary release): it is accepted or
    // rolled back before another replacement.
    if (const auto pending = ledger_.provisional(); !pending.empty() && !replacements.empty())
        return s.done(Outcome::rejected, "transaction " + std::to_string(pending.front().id) +
                                             " (" + pending.front().command +
                                             ") is provisional: accept or roll it back first");
    std::string reason = transaction.run(mode, late_additions, timer());
    if (!reason.empty()) return s.done(Outcome::aborted, std::move(reason));
    if (!additions.empty()) fit_threads();
    keep_release(s, transaction, options.probation.value_or(probation()));
    return s.done(Outcome::committed);
}

// One module thread more waits on a futex: the kernel's futex hash grows with them (see
// futex_hash.hpp), counting the runtime's own few threads too.
void Upgrader::fit_threads() {
    constexpr std::size_t kRuntimeThreads = 8;
    if (const auto per_module = parts_.config.futex_slots_per_module; per_module > 0)
        fit_futex_hash(per_module * (parts_.names.size() + kRuntimeThreads));
}

// --- Probation and rollback -------------------------------------------------------------------

void Upgrader::set_probation(std::chrono::milliseconds period) {
    if (period.count() < 0) throw Error("the probation period cannot be negative");
    probation_ms_ = period.count();
}

// A committed replacement becomes a release: provisional under probation (the old libraries
// stay mapped), permanent otherwise; either way with the commit-time checkpoints up to
// Config::checkpoint_keep_bytes (Transaction::keep_checkpoints).
void Upgrader::keep_release(Session& s, const Transaction& transaction,
                            std::chrono::milliseconds probation) {
    CommittedRelease release;
    release.targets = transaction.undo();
    if (release.targets.empty()) return;  // additions only: nothing to go back to
    release.id = s.report.id;
    release.command = s.report.command;
    release.probation = probation;
    const bool provisional = release.probation.count() > 0;
    release.state = provisional ? ReleaseState::provisional : ReleaseState::permanent;
    release.deadline = Clock::now() + release.probation;
    if (!provisional)
        for (auto& t : release.targets) t.old_library.reset();
    s.report.probation = provisional ? release.probation : std::chrono::milliseconds{0};
    s.transition(release.transition(provisional ? "probation" : "no probation", {}));
    ledger_.add(std::move(release));
}

std::vector<std::uint64_t> Upgrader::accept(std::uint64_t transaction) {
    std::lock_guard lock(transaction_mutex_);  // no transition while a command runs
    std::vector<std::uint64_t> accepted;
    for (const auto& release : ledger_.provisional()) {
        if (transaction != 0 && release.id != transaction) continue;
        auto before = ledger_.settle(release.id, ReleaseState::permanent);
        if (!before) continue;
        auto t = before->transition("accepted", "ended early by the operator");
        t.state = ReleaseState::permanent;
        store_transition(release.id, ReleaseState::permanent, {});
        parts_.host.transition(t);
        accepted.push_back(release.id);
    }
    if (accepted.empty())
        throw Error(transaction == 0
                        ? std::string("no transaction is provisional")
                        : "transaction " + std::to_string(transaction) + " is not provisional");
    return accepted;
}

void Upgrader::expire(std::uint64_t transaction) {
    std::lock_guard lock(transaction_mutex_);
    auto release = ledger_.find(transaction);
    if (!release || release->state != ReleaseState::provisional || Clock::now() < release->deadline)
        return;
    if (!ledger_.settle(transaction, ReleaseState::permanent)) return;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g",
                  static_cast<double>(release->probation.count()) / 1000.0);
    auto t = release->transition(
        "expired", std::string("probation of ") + seconds + " s ended with no health rule tripped");
    t.state = ReleaseState::permanent;
    store_transition(transaction, ReleaseState::permanent, {});
    parts_.host.transition(t);
}

// The changes that take each module of `release` back to its old version, or why not.
std::string Upgrader::prepare_rollback(const CommittedRelease& release,
                                       const RollbackRequest& request, Transaction& transaction,
                                       std::vector<Change>& changes) {
    const std::string id = std::to_string(release.id);
    if (release.state == ReleaseState::rolled_back)
        return "transaction " + id + " has been rolled back already";
    if (request.only_provisional && release.state != ReleaseState::provisional)
        return "transaction " + id + " is no longer provisional";
    for (const auto& t : release.targets) {
        auto proxy = parts_.names.find(t.name);
        if (!proxy) return "module '" + t.name + "' of transaction " + id + " no longer exists";
        auto expected = t.new_library.lock();
        if (!expected || proxy->library() != expected)
            return "module '" + t.name + "' no longer runs version " + t.new_version +
                   " of transaction " + id + " (a later transaction changed it)";
        if (request.from_checkpoint && !t.old_checkpoint)
            return "transaction " + id + " kept no checkpoint of module '" + t.name + "' (" +
                   t.no_checkpoint + ")";
        changes.push_back({t.name, t.old_path});
    }
    try {
        transaction.validate(changes, {});
    } catch (const Error& e) {
        return e.what();
    }
    return rollback_options(release, request, transaction);
}

// The old libraries: still mapped during probation; after it, loaded again from the recorded
// path, which must still hold the recorded content.
std::string Upgrader::rollback_options(const CommittedRelease& release,
                                       const RollbackRequest& request, Transaction& transaction) {
    for (const auto& t : release.targets) {
        TargetOptions options;
        options.library = t.old_library;
        if (!options.library) {
            try {
                options.library = parts_.libraries.acquire(t.old_path);
            } catch (const Error& e) {
                return "version " + t.old_version + " of module '" + t.name +
                       "' cannot be loaded again: " + e.what();
            }
            if (options.library->sha256() != t.old_sha256)
                return "library '" + t.old_path + "' no longer holds version " + t.old_version +
                       " of module '" + t.name + "' (its SHA-256 changed since transaction " +
                       std::to_string(release.id) + ")";
        }
        options.down_to = t.old_schema;
        if (request.from_checkpoint) options.from_checkpoint = t.old_checkpoint;
        options.served_at_commit = t.served_at_commit;
        transaction.options(t.name, std::move(options));
    }
    return {};
}

TransactionReport Upgrader::rollback(const RollbackRequest& request) {
    std::string command = "rollback";
    if (request.from_checkpoint) command += " -from-checkpoint";
    command += request.transaction != 0 ? " -transaction " + std::to_string(request.transaction)
                                        : " " + request.name;
    Session s(*this, std::move(command));
    s.report.rule = request.rule;
    s.report.evidence = request.evidence;
    s.report.mode = Mode::concurrent;
    parts_.graveyard.reap();
    auto release = request.transaction != 0 ? ledger_.find(request.transaction)
                                            : ledger_.last_touching(request.name);
    if (!release)
        return s.done(Outcome::rejected,
                      request.transaction != 0
                          ? "no remembered transaction " + std::to_string(request.transaction) +
                                " replaced a module"
                          : "no committed transaction replaced module '" + request.name + "'");
    s.report.undoes = release->id;
    Transaction transaction(parts_, s.report,
                            [this, &s](const char* state) { announce(s.report, state); });
    if (request.force) transaction.force();
    std::vector<Change> changes;
    if (auto refused = prepare_rollback(*release, request, transaction, changes); !refused.empty())
        return s.done(Outcome::rejected, refused);
    std::string reason = transaction.run(Mode::concurrent, false, timer());
    if (!reason.empty()) {
        bool offered = true;
        for (const auto& t : s.report.targets)
            if (t.state_transfer.find("as is") != std::string::npos) offered = false;
        reason = "rollback refused: " + reason;
        if (!offered && !request.from_checkpoint)
            reason +=
                " (no down-conversion was offered; 'rollback -from-checkpoint' restarts "
                "the older versions from their commit-time checkpoints)";
        return s.done(Outcome::aborted, reason);
    }
    if (auto before = ledger_.settle(release->id, ReleaseState::rolled_back)) {
        auto t = before->transition(request.rule, request.evidence);
        t.state = ReleaseState::rolled_back;
        t.rollback = s.report.id;
        store_transition(release->id, ReleaseState::rolled_back,
                         "rolled back by transaction " + std::to_string(s.report.id) + " (" +
                             request.rule + (request.evidence.empty() ? "" : ": ") +
                             request.evidence + ")");
        s.transition(std::move(t));
    }
    return s.done(Outcome::committed);
}

TransactionReport Upgrader::restart(const std::string& name) {
    Session s(*this, "restart " + name);
    s.report.mode = Mode::concurrent;
    parts_.graveyard.reap();
    auto proxy = parts_.names.find(name);
    auto library = proxy ? proxy->library() : nullptr;
    if (!library) return s.done(Outcome::rejected, "no module is named '" + name + "'");
    Transaction transaction(parts_, s.report,
                            [this, &s](const char* state) { announce(s.report, state); });
    try {
        transaction.validate({{name, library->path()}}, {});
    } catch (const Error& e) {
        return s.done(Outcome::rejected, e.what());
    }
    TargetOptions options;
    options.library = std::move(library);
    transaction.options(name, std::move(options));
    std::string reason = transaction.run(Mode::concurrent, false, timer());
    return s.done(reason.empty() ? Outcome::committed : Outcome::aborted, std::move(reason));
}

std::vector<SavedCheckpoint> Upgrader::checkpoint(const std::string& name) {
    std::lock_guard lock(transaction_mutex_);  // no swap while put_state() runs
    std::vector<std::string> names = parts_.names.names();
    if (!name.empty()) {
        if (!parts_.names.find(name)) throw Error("no module is named '" + name + "'");
        names = {name};
    }
    std::vector<SavedCheckpoint> out;
    for (const auto& n : names) {
        auto proxy = parts_.names.find(n);
        if (!proxy) continue;
        SavedCheckpoint c;
        c.module = n;
        c.taken = std::chrono::system_clock::now();
        try {
            if (proxy->called_from_own_thread())
                throw Error("module '" + n + "' cannot checkpoint itself from its own thread");
            auto [state, version] = proxy->checkpoint_now(parts_.config.state_timeout);
            c.schema = state.schema;
            c.bytes = std::move(state.bytes);
            c.version = std::move(version);
        } catch (const Error& e) {
            c.error = e.what();
        }
        out.push_back(std::move(c));
    }
    if (parts_.store != nullptr) {
        parts_.store->save_checkpoints(out);
        for (auto& c : out) c.saved = c.error.empty();
    }
    return out;
}

// The process ended while a transaction was provisional: the release to come back to is the
// permanent one. Crash records of modules that transaction changed say why. This is the one
// place that decides what an interrupted probation means (issue 12 item 5).
std::string Upgrader::discard_interrupted(RestoreReport& out, const std::string& state_dir) {
    auto records = CrashRecorder::read(state_dir);
    const auto pending = parts_.store->provisional();
    std::vector<std::string> changed;
    if (pending) changed = parts_.store->changed_by(pending->first);
    for (auto& r : records)
        if (std::find(changed.begin(), changed.end(), r.module) != changed.end())
            r.provisional_transaction = pending->first;
    out.crashes = parts_.store->import_crashes(records);
    CrashRecorder::clear(state_dir);
    if (!pending) return {};
    std::string why = "the process ended while transaction " + std::to_string(pending->first) +
                      " was provisional";
    for (const auto& r : out.crashes)
        if (r.provisional_transaction == pending->first) {
            why = "module '" + r.module + "' version " + r.version + " died of " + r.signal_name +
                  " while transaction " + std::to_string(pending->first) + " was provisional";
            break;
        }
    parts_.store->discard_provisional(pending->first, why);
    return why;
}

RestoreReport Upgrader::restore(const std::string& state_dir) {
    RestoreReport out;
    if (parts_.store == nullptr) return out;
    IssuerScope scope(kRestoreIssuer);
    out.discarded = discard_interrupted(out, state_dir);
    const auto release = parts_.store->permanent();
    if (!release) return out;
    if (release->quiescence_ms > 0) timeout_ms_ = release->quiescence_ms;
    const auto saved = parts_.store->checkpoints();
    for (const auto& m : release->modules) restore_module(m, saved, out);
    // What runs is the stored release exactly: from now on a command writes only its changes.
    write_whole_.store(!out.errors.empty() || parts_.names.size() != release->modules.size());
    return out;
}

void Upgrader::restore_module(const ReleaseModule& m,
                              const std::map<std::string, SavedCheckpoint>& saved,
                              RestoreReport& out) {
    const std::string not_restored =
        "module '" + m.name + "' version " + m.version + " was not restored: ";
    if (parts_.names.find(m.name)) {
        out.errors.push_back(not_restored + "a module of that name already runs");
        return;
    }
    try {
        const std::string digest = parts_.libraries.digest(m.library);
        if (digest != m.sha256) {
            out.errors.push_back(not_restored + "its library '" + m.library +
                                 "' has changed since it was committed (SHA-256 " +
                                 digest.substr(0, 12) + "..., expected " + m.sha256.substr(0, 12) +
                                 "...)");
            return;
        }
    } catch (const Error& e) {
        out.errors.push_back(not_restored + e.what());
        return;
    }
    auto load = [&](Seeds seeds) {
        auto report = run("restore " + m.name + " " + m.library, {}, {{m.name, m.library}},
                          Mode::concurrent, false, TransactionOptions{}, std::move(seeds));
        out.transactions.push_back(report);
        return report;
    };
    Seeds seeds;
    const auto c = saved.find(m.name);
    if (c != saved.end())
        seeds[m.name] = std::make_shared<const State>(State{c->second.schema, c->second.bytes});
    auto report = load(std::move(seeds));
    if (!report.ok() && c != saved.end()) {
        // The checkpoint may be another version's (one saved at the end of a probation that was
        // then discarded) that this one cannot read: the module starts without it rather than
        // not at all, and the operator is told what was lost.
        auto fresh = load({});
        if (fresh.ok()) {
            out.errors.push_back("module '" + m.name + "' version " + m.version +
                                 " was restored without its checkpoint (taken of version " +
                                 c->second.version + "): " + report.reason);
            report = std::move(fresh);
        }
    }
    if (!report.ok()) {
        out.errors.push_back(not_restored + report.reason);
        return;
    }
    ++out.restored;
    if (!m.enabled) out.transactions.push_back(toggle(m.name, false));
}

}  // namespace nonstop::detail
