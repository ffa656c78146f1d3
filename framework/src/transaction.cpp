#include "transaction.hpp"

#include <barrier>
#include <cstdio>
#include <set>
#include <thread>

#include "event_manager.hpp"
#include "graveyard.hpp"
#include "name_service.hpp"
#include "preflight.hpp"
#include "version_repository.hpp"

namespace nonstop::detail {

// One module of the transaction, carried by its slave thread.
struct Transaction::Target {
    bool addition = false;
    Change change;
    std::shared_ptr<ModuleProxy> proxy;
    ModuleProxy::Task fresh;    // the new implementation
    ModuleProxy::Task old;      // the replaced one, destroyed after the start
    bool prepared = false;      // the proxy was asked to prepare: it must commit or abort
    bool swapped = false;       // the new version holds the module: it serves, or it goes back
    bool forced = false;        // the old version was stuck: abandoned, no checkpoint
    bool handed_over = false;   // the old version's thread started the new one itself
    bool begun = false;         // in waves: the phase's first half ran (begin())
    bool begin_failed = false;  // ... and threw (the error is in `error`)
    bool await_enable = false;  // the start waits for the new version's enable()
    std::uint64_t handled_at_commit = 0, failed_at_commit = 0;  // by the old version
    std::shared_ptr<State> state;          // the old version's checkpoint, for the new one
    std::uint32_t schema = 0;              // its schema (given, the bytes are the new one's)
    bool given = false;                    // handed to the new version by move (take_state)
    bool seeded = false;                   // an addition started from a saved checkpoint
    std::string error;                     // why this target cannot commit
    std::unique_ptr<Preflight> preflight;  // the child kept for the state check
    std::shared_ptr<Library> staged;       // a late addition's library, vetted, not yet loaded
    TargetReport report;
    TargetOptions options;
    ReleaseTarget undo;  // filled at commit
};

Transaction::Transaction(UpgraderParts& parts, TransactionReport& report, Announce announce)
    : parts_(parts), report_(report), announce_(std::move(announce)) {}

Transaction::~Transaction() = default;

void Transaction::trace(Step step, const Target& t, const std::string& version) {
    if (parts_.host.tracing()) parts_.host.trace(report_.id, t.change.name, version, step);
}

// --- Validation (figure 4.13) ---------------------------------------------------------------

bool reserved(const std::string& name) {
    return name == "upgrader" || name == "host" || name == "timer";
}

void Transaction::validate(const std::vector<Change>& replacements,
                           const std::vector<Change>& additions) {
    std::set<std::string> seen;
    for (const auto& [list, addition] : {std::pair{&replacements, false}, {&additions, true}}) {
        for (const auto& c : *list) {
            if (c.name.empty()) throw Error("a module name is empty");
            if (!seen.insert(c.name).second) throw Error("module '" + c.name + "' is named twice");
            Target t;
            t.addition = addition;
            t.change = c;
            t.report.name = c.name;
            t.report.library = c.library;
            t.report.action = addition ? Action::load : Action::replace;
            auto existing = parts_.names.find(c.name);
            if (addition && existing) throw Error("a module named '" + c.name + "' already exists");
            if (addition && reserved(c.name))
                throw Error("'" + c.name +
                            "' is a name the framework sends and publishes under; a module "
                            "cannot have it");
            if (addition) {
                t.proxy = std::make_shared<ModuleProxy>(c.name, parts_.config, parts_.host);
            } else {
                if (!existing) throw Error("no module is named '" + c.name + "'");
                const ModuleInfo info = existing->info();
                if (info.in_transaction) throw Error("module '" + c.name + "' is in a transaction");
                if (existing->called_from_own_thread())
                    throw Error("module '" + c.name +
                                "' cannot be replaced from its own thread (it would wait for "
                                "itself)");
                t.proxy = std::move(existing);
                t.report.old_version = info.version;
                t.report.old_kind = info.kind;
            }
            targets_.push_back(std::move(t));
        }
    }
    if (targets_.empty()) throw Error("the command names no module");
}

// --- The steps of one target ----------------------------------------------------------------

void Transaction::options(const std::string& name, TargetOptions options) {
    for (auto& t : targets_)
        if (t.change.name == name) t.options = std::move(options);
}

std::vector<ReleaseTarget> Transaction::undo() const {
    std::vector<ReleaseTarget> out;
    for (const auto& t : targets_)
        if (!t.addition && t.swapped) out.push_back(t.undo);
    return out;
}

// A replacement must be the same kind of module, unless the operator forces it.
void Transaction::check_kind(const Target& t, const std::string& path,
                             const std::string& kind) const {
    if (!t.addition && !force_ && kind != t.report.old_kind)
        throw Error("library '" + path + "' holds a module of kind '" + kind + "', but module '" +
                    t.change.name + "' is of kind '" + t.report.old_kind + "'");
}

// Preflight, before the host loads the library (and before buffering: none of it is part of
// the blackout). The kind is checked on what the child found, so that a library of another
// kind is not loaded either.
void Transaction::try_first(Target& t, const std::string& path, const std::string& copy) {
    t.report.preflight = true;
    const auto begin = Clock::now();
    // The cost includes ending the child (kill and reap) when it is not kept.
    auto account = [&] { t.report.preflight_time = Clock::now() - begin; };
    try {
        t.preflight = std::make_unique<Preflight>(Preflight::locate(parts_.config), copy, path,
                                                  t.change.name, parts_.config.preflight_timeout);
        check_kind(t, path, t.preflight->kind());
    } catch (...) {
        t.preflight.reset();
        account();
        throw;
    }
    if (!preflight_state_ || t.addition) t.preflight.reset();
    account();
}

VersionRepository::Vet Transaction::vet(Target& t) {
    if (!preflight_) return {};
    return
        [this, &t](const std::string& path, const std::string& copy) { try_first(t, path, copy); };
}

void Transaction::prepare(Target& t) {
    if (!t.fresh) launch(t);
    t.fresh->wait_initialized(parts_.config.initialize_timeout);
}

void Transaction::launch(Target& t) {
    // A rollback or a restart brings code this host already runs: no preflight.
    auto library = t.options.library ? t.options.library
                   : t.staged        ? parts_.libraries.load(std::exchange(t.staged, nullptr))
                                     : parts_.libraries.acquire(t.change.library, vet(t));
    t.report.new_version = library->version();
    t.report.new_kind = library->kind();
    t.report.sha256 = library->sha256();
    check_kind(t, library->path(), library->kind());
    t.fresh = t.proxy->create(std::move(library), report_.id);
}

// The old version's checkpoint, tried by the new version's get_state() in the preflight child
// before the host decides. This is part of voting, hence of the blackout: the child is only
// told to end here; it is reaped with the target, after the start.
void Transaction::try_state(Target& t, const State& state) {
    if (!t.preflight) return;
    t.report.preflight_state = true;
    const auto begin = Clock::now();
    std::string error;
    try {
        t.preflight->check_state(state, t.report.old_version, parts_.config.preflight_timeout);
    } catch (const std::exception& e) {
        error = e.what();
    }
    t.preflight->stop();
    t.report.preflight_state_time = Clock::now() - begin;
    if (!error.empty()) throw Error(error);
}

// Ends an instance the transaction no longer needs, within the terminate limit; one that does
// not come back is kept, abandoned, and the report says so.
void Transaction::dispose(Target& t, ModuleProxy::Task task) {
    if (!task) return;
    const std::string version = task->version();
    const char* in = "";
    if (task->abandoned()) task->busy_for(&in);
    if (parts_.graveyard.dispose(task, t.proxy, parts_.config.terminate_timeout)) {
        trace(Step::unloaded, t, version);
        return;
    }
    task->busy_for(&in);
    t.report.abandoned_version = version;
    t.report.abandoned_in = in;
}

void Transaction::drain(Target& t) {
    t.prepared = true;
    t.report.vote = Vote::no;
    t.proxy->begin_prepare(ModuleProxy::Intake::buffer, report_.id, t.options.down_to,
                           direct(t) ? t.fresh : nullptr, keep_limit());
}

void Transaction::vote(Target& t) {
    if (!t.begun) drain(t);
    ModuleProxy::Checkpoint checkpoint;
    try {
        checkpoint = t.proxy->await_prepared(timeout_);
    } catch (const Timeout&) {
        trace(Step::timeout, t, t.report.old_version);
        if (!force_) throw;
        t.forced = t.report.forced = true;  // the stuck version gives no checkpoint
    }
    t.handled_at_commit = checkpoint.handled;
    t.failed_at_commit = checkpoint.failed;
    t.report.quiescence = checkpoint.quiescence;
    if (checkpoint.handed_over) {  // its steps up to the start were traced as they happened
        t.report.vote = Vote::yes;
        t.handed_over = true;
        // Given, the bytes are the new version's already: only what was noted of them is read.
        const auto& handed = checkpoint.handed;
        t.state = handed.state;
        t.schema = handed.schema;
        t.given = handed.given;
        if (t.options.down_to) describe_transfer(t, State{handed.schema, {}}, checkpoint.converted);
        t.report.checkpoint_bytes = handed.bytes;
        return;
    }
    if (t.options.down_to) describe_transfer(t, checkpoint.state, checkpoint.converted);
    t.report.checkpoint_bytes = checkpoint.state.bytes.size();
    if (!t.forced) try_state(t, checkpoint.state);
    t.schema = checkpoint.state.schema;
    t.state = std::make_shared<State>(std::move(checkpoint.state));
    t.report.vote = Vote::yes;
    trace(Step::put_state, t, t.report.old_version);
    trace(Step::prepared, t, t.report.old_version);
}

// The old version may start the new one itself once its checkpoint is taken when nothing else
// can decide against the commit: one replacement, no outside vote, no preflight of the state,
// no checkpoint but its own to restore, nothing forced.
bool Transaction::direct(const Target& t) const {
    return targets_.size() == 1 && !t.addition && !force_ && !preflight_state_ && !agree_ &&
           !hold_ && !t.options.from_checkpoint && t.fresh;
}

// A rollback's report says how the older version gets its state back, and what that costs.
void Transaction::describe_transfer(Target& t, const State& state, bool converted) {
    const auto now = t.proxy->info();
    const std::uint64_t served = now.handled + now.failed;
    if (t.options.from_checkpoint) {
        t.report.state_transfer = "commit-time checkpoint (schema " +
                                  std::to_string(t.options.from_checkpoint->schema) + ")";
        t.report.discarded =
            served > t.options.served_at_commit ? served - t.options.served_at_commit : 0;
    } else if (t.forced) {
        t.report.state_transfer = "none: the newer version was given up on";
    } else if (converted) {
        t.report.state_transfer = "down-converted to schema " + std::to_string(*t.options.down_to);
    } else if (state.schema == *t.options.down_to) {
        t.report.state_transfer =
            "checkpoint schema " + std::to_string(state.schema) + " (the older one's)";
    } else {
        t.report.state_transfer = "checkpoint schema " + std::to_string(state.schema) +
                                  " as is (no down-conversion to schema " +
                                  std::to_string(*t.options.down_to) + " offered)";
    }
}

// What undoing this replacement takes, taken while both versions are parked.
void Transaction::remember(Target& t) {
    auto old = t.proxy->library();
    const auto counters = t.proxy->info();
    ReleaseTarget& u = t.undo;
    u.name = t.change.name;
    u.old_version = t.report.old_version;
    u.new_version = t.report.new_version;
    if (old) {
        u.old_path = old->path();
        u.old_sha256 = old->sha256();
    }
    u.old_library = std::move(old);
    u.new_library = t.fresh->shared_library();
    u.new_path = t.fresh->library().path();
    u.new_sha256 = t.fresh->library().sha256();
    if (t.forced) u.no_checkpoint = "its old version was given up on";
    if (!t.forced && t.state) {
        u.old_schema = t.schema;
        keep_checkpoint(t);
    }
    // Counted when the old version took its termination message: the new one may serve
    // already (a direct hand-over), and a forced replacement's old version never got there.
    const bool counted = !t.forced;
    u.served_at_commit =
        counted ? t.handled_at_commit + t.failed_at_commit : counters.handled + counters.failed;
    u.failed_at_commit = counted ? t.failed_at_commit : counters.failed;
}

namespace {
std::string size_text(std::size_t bytes) {
    if (bytes < (std::size_t{1} << 20)) return std::to_string(bytes) + " bytes";
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return text;
}
}  // namespace

// The release keeps the commit-time checkpoint only while that stays cheap: the new version
// then restores a copy (get_state, inside the blackout) and the bytes stay in memory until the
// module moves on. A larger one goes to the new version by move; the release says why not.
std::optional<std::size_t> Transaction::keep_limit() const {
    if (!keep_checkpoints_) return std::nullopt;
    return parts_.config.checkpoint_keep_bytes;
}

void Transaction::keep_checkpoint(Target& t) {
    ReleaseTarget& u = t.undo;
    const std::size_t size = t.report.checkpoint_bytes;
    const std::size_t limit = parts_.config.checkpoint_keep_bytes;
    if (!keep_checkpoints_) return;   // no release is made of this transaction
    if (!t.given && size <= limit) {  // a direct hand-over decided the same (keep_limit())
        u.old_checkpoint = t.state;
        return;
    }
    u.no_checkpoint = "its " + size_text(size) +
                      " checkpoint was over Config::checkpoint_keep_bytes (" + size_text(limit) +
                      "), so version " + t.report.new_version + " took it by move";
}

void Transaction::commit(Target& t) {
    if (t.addition) {
        t.proxy->attach(t.fresh);
        parts_.names.insert(t.proxy);
        return;
    }
    if (!t.handed_over) trace(Step::commit, t, t.report.old_version);
    remember(t);
    if (t.forced) {
        t.old = t.proxy->force_swap(t.fresh);
        t.report.abandoned_version = t.report.old_version;
        t.report.abandoned_in = "handle";
    } else {
        t.proxy->swap(t.fresh);
    }
    t.swapped = true;
    if (!t.handed_over) trace(Step::hot_swapped, t, t.report.new_version);
}

// The checkpoint goes to the new version, which restores it in its own thread when it starts,
// before it takes a message: by get_state() when the release keeps it too, else by move
// (take_state). A forced replacement hands it an empty one (schema 0).
StateHandover Transaction::restore(Target& t) {
    if (t.options.from_checkpoint) return t.options.from_checkpoint;
    if (t.handed_over) return nullptr;  // the old version started it with it
    if (t.forced || !t.state) return std::make_shared<const State>();
    if (t.undo.old_checkpoint) return std::shared_ptr<const State>(t.state);
    t.given = true;  // still pointed at, for give_back() should the new version refuse it
    return StateHandover::give(t.state);
}

// An aborted transaction gives the old version its own checkpoint back (take_state, in its own
// thread before it serves again), so that a module whose put_state() moved its state out loses
// nothing. Only when put_state() gave one that no one else uses: after the start, the new
// version must have refused it (or only read it: kept) and not have been abandoned, as its
// thread might still be in it.
StateHandover Transaction::give_back(Target& t, bool started) {
    if (t.forced || !t.state) return nullptr;
    if (started && (!t.fresh || t.fresh->abandoned())) return nullptr;
    if (started && t.given && t.fresh->start_error().empty()) {
        // The new version took it by move and waits, held, for its group: it gives back what
        // it now holds, converted to the old version's schema if it can.
        auto back = t.fresh->give_state_back(t.schema, parts_.config.state_timeout);
        if (!back) return nullptr;
        return StateHandover::give(std::make_shared<State>(std::move(*back)), true);
    }
    if (t.state->bytes.empty()) return nullptr;  // nothing to lose
    return StateHandover::give(std::move(t.state), true);
}

void Transaction::abort(Target& t) {
    if (t.prepared) {
        trace(Step::abort, t, t.report.old_version);
        t.proxy->abort(report_.id);
    }
    t.preflight.reset();
    dispose(t, std::exchange(t.fresh, nullptr));  // ends its waiting thread
}

void Transaction::start(Target& t) {
    if (!t.begun) begin_start(t);
    if (t.await_enable) await_enabled(t);
}

void Transaction::begin_start(Target& t) {
    t.await_enable = false;
    if (!commit_) {
        if (t.prepared) t.proxy->start(report_.id, false, give_back(t, false));  // it resumes
        return;
    }
    if (t.addition) {
        const auto seed = seeds_.find(t.change.name);
        if (seed == seeds_.end()) {
            t.proxy->start(report_.id);
            return;
        }
        t.seeded = true;
        t.proxy->start(report_.id, false, seed->second);
    } else {
        t.proxy->start(report_.id, hold_, restore(t));
    }
    t.await_enable = true;
}

void Transaction::await_enabled(Target& t) {
    const auto limit = parts_.config.state_timeout + parts_.config.enable_timeout;
    if (t.fresh->wait_enabled(limit)) return;
    if (auto refused = t.fresh->start_error(); !refused.empty()) throw Error(refused);
    const char* in = "enable";
    t.fresh->busy_for(&in);
    t.report.abandoned_version = t.report.new_version;
    t.report.abandoned_in = in;
    throw Error("module '" + t.change.name + "' version " + t.report.new_version +
                " did not return from " + in + "() within " + std::to_string(limit.count()) +
                " ms");
}

void Transaction::serve(Target& t) {
    if (t.addition) {
        // A seeded addition that refused its checkpoint never took a message: out again.
        if (!commit_ && t.seeded) {
            parts_.names.remove(t.change.name);
            dispose(t, std::exchange(t.fresh, nullptr));
        }
        return;
    }
    if (!commit_) {
        if (!t.swapped) return;
        // Started but not to serve: the old version takes the module back, on the buffered
        // queue the new one never touched.
        trace(Step::abort, t, t.report.old_version);
        dispose(t, t.proxy->revert(report_.id, give_back(t, true)));
        return;
    }
    if (!t.begun) settle(t);
    if (t.forced) {
        parts_.graveyard.bury(std::move(t.old), t.proxy);
        return;
    }
    // Ended after the start, so that the old version's terminate(), its destruction and the
    // unmapping of its library are not part of the blackout.
    dispose(t, std::exchange(t.old, nullptr));
}

// The new version serves; the old one is told to end (a forced one is left to the graveyard).
void Transaction::settle(Target& t) {
    if (hold_) t.fresh->go();
    if (!t.forced) t.old = t.proxy->settle();
}

void Transaction::measure(Target& t) {
    if (t.addition) return;
    t.report.buffered = t.proxy->buffered();
    const auto deadline = Clock::now() + parts_.config.blackout_probe_limit;
    if (auto blackout = t.proxy->blackout(deadline)) t.report.blackout = *blackout;
}

// --- Running the steps ----------------------------------------------------------------------

void Transaction::step(Phase phase, Target& t) {
    try {
        switch (phase) {
            case Phase::prepare:
                if (!t.addition || !late_additions_)
                    prepare(t);
                else if (preflight_)  // tried now, loaded once the replacements voted yes
                    t.staged = parts_.libraries.stage(t.change.library, vet(t));
                break;
            case Phase::vote:
                if (commit_ && !t.addition) vote(t);
                break;
            case Phase::complete: commit_ ? commit(t) : abort(t); break;
            case Phase::start: start(t); break;
            case Phase::serve: serve(t); break;
        }
    } catch (const std::exception& e) {
        t.error = e.what();
        if (phase == Phase::prepare) dispose(t, std::exchange(t.fresh, nullptr));
    }
}

std::string Transaction::first_error() const {
    for (const auto& t : targets_)
        if (!t.error.empty()) return t.error;
    return {};
}

// The master's decision after every target finished a phase (the barrier's completion).
void Transaction::decide(Phase phase) {
    if (!commit_) return;
    if (phase == Phase::vote && late_additions_) {
        // Figure 4.12: the additions load once every replaced module has voted yes.
        for (auto& t : targets_)
            if (t.addition && first_error().empty()) {
                late_additions_ = false;
                step(Phase::prepare, t);
                late_additions_ = true;
            }
    }
    if (phase == Phase::prepare || phase == Phase::vote || phase == Phase::start) {
        reason_ = first_error();
        commit_ = reason_.empty();
    }
    if (phase == Phase::vote && commit_ && agree_) {
        // Every target is quiescent and buffering: the outside party's vote (a fleet's
        // two-phase commit) is the last one.
        try {
            reason_ = agree_();
        } catch (const std::exception& e) {
            reason_ = std::string("the outside agreement failed: ") + e.what();
        }
        commit_ = reason_.empty();
    }
    // The upgrader's states of figure 4.13, for whoever follows transactions live. The commit
    // is announced once every new version has restored its state and enabled itself.
    switch (phase) {
        case Phase::prepare: announce_(commit_ ? "voting" : "cleanup"); break;
        case Phase::vote:
            if (!commit_) announce_("abort");
            break;
        case Phase::complete: break;
        case Phase::start:
            announce_(commit_ ? "commit" : "abort");
            if (commit_) announce_("start");
            break;
        case Phase::serve: break;
    }
}

namespace {
constexpr int kPhases = 5;
}

void Transaction::in_turn() {
    for (int p = 0; p < kPhases; ++p) {
        for (auto& t : targets_) step(static_cast<Phase>(p), t);
        decide(static_cast<Phase>(p));
    }
}

// Concurrent without a thread per target: each phase's first half is begun for every target
// (each wakes that module's own thread), then each is awaited, so that the modules' waits
// overlap while one thread drives them all.
void Transaction::in_waves() {
    for (int p = 0; p < kPhases; ++p) {
        const auto phase = static_cast<Phase>(p);
        for (auto& t : targets_) begin(phase, t);
        for (auto& t : targets_) {
            if (!t.begin_failed) step(phase, t);
            t.begun = t.begin_failed = false;
        }
        decide(phase);
    }
}

void Transaction::begin(Phase phase, Target& t) {
    try {
        switch (phase) {
            case Phase::prepare:
                if (t.addition && late_additions_) return;  // loaded after the vote
                launch(t);
                break;
            case Phase::vote:
                if (!commit_ || t.addition) return;
                drain(t);
                break;
            case Phase::start: begin_start(t); break;
            case Phase::serve:
                if (!commit_ || t.addition) return;
                settle(t);
                break;
            case Phase::complete: return;
        }
        t.begun = true;
    } catch (const std::exception& e) {
        t.error = e.what();
        t.begin_failed = true;
        if (phase == Phase::prepare) dispose(t, std::exchange(t.fresh, nullptr));
    }
}

void Transaction::on_slaves() {
    int phase = 0;
    std::barrier sync(static_cast<std::ptrdiff_t>(targets_.size()),
                      [&]() noexcept { decide(static_cast<Phase>(phase++)); });
    std::vector<std::thread> slaves;
    slaves.reserve(targets_.size());
    for (auto& t : targets_) {
        slaves.emplace_back([&, target = &t] {
            for (int p = 0; p < kPhases; ++p) {
                step(static_cast<Phase>(p), *target);
                sync.arrive_and_wait();
            }
        });
    }
    for (auto& slave : slaves) slave.join();
}

std::string Transaction::run(Mode mode, bool late_additions, std::chrono::milliseconds timeout) {
    late_additions_ = late_additions;
    timeout_ = timeout;
    hold_ = targets_.size() > 1;
    announce_("preparation");
    if (mode == Mode::sequential || targets_.size() == 1)
        in_turn();
    else if (preflight_)
        on_slaves();  // the sandbox children, one a target, run side by side
    else
        in_waves();
    for (auto& t : targets_) {
        if (commit_)
            measure(t);
        else
            t.report.new_version.clear();
        report_.targets.push_back(t.report);
    }
    return commit_ ? std::string() : reason_;
}

}  // namespace nonstop::detail
