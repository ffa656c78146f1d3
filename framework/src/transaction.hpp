// One replace/load command in flight (the upgrader's state machine, thesis figure 4.13): its
// targets, one named step per phase, and the routine that runs the steps either in turn
// (sequential) or on one slave thread per target separated by a barrier (concurrent, 4.8.1).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "module_proxy.hpp"
#include "nonstop/change.hpp"
#include "nonstop/config.hpp"
#include "nonstop/transaction_report.hpp"
#include "release_ledger.hpp"

namespace nonstop::detail {

class EventManager;
class Graveyard;
class NameService;
class TimerService;
class VersionRepository;

class ReleaseStore;

/// The services a transaction works on, all below the upgrader.
struct UpgraderParts {
    NameService& names;
    EventManager& events;
    VersionRepository& libraries;
    TimerService& timers;
    ModuleHost& host;
    Graveyard& graveyard;
    const Config& config;
    ReleaseStore* store = nullptr;  // null without a state directory
};

/// True for the names the framework itself sends and publishes under ("upgrader", "host",
/// "timer"): no module may take them.
bool reserved(const std::string& name);

/// How one target of a rollback (or a restart) differs from a plain replacement.
struct TargetOptions {
    std::shared_ptr<Library> library;      // the code to run, already loaded (not acquired)
    std::optional<std::uint32_t> down_to;  // ask the newer version for this state schema
    /// Start from this checkpoint, not the current version's (rollback -from-checkpoint, or
    /// a stuck version given up on); with it, `served_at_commit` counts what is discarded.
    std::shared_ptr<const State> from_checkpoint;
    std::uint64_t served_at_commit = 0;
};

class Transaction {
public:
    /// Tells whoever follows transactions live that the upgrader entered `state`.
    using Announce = std::function<void(const char* state)>;

    Transaction(UpgraderParts& parts, TransactionReport& report, Announce announce);
    ~Transaction();

    /// Validation: every name once, replacements exist and can be targets now, additions are
    /// free. Throws Error (the command is rejected; nothing was touched).
    void validate(const std::vector<Change>& replacements, const std::vector<Change>& additions);
    /// Everything after validation. With `late_additions` the additions load once every
    /// replaced module voted yes (figure 4.12). Fills the report's targets; returns the reason
    /// of an abort, empty when the transaction committed.
    std::string run(Mode mode, bool late_additions, std::chrono::milliseconds timeout);
    /// A forced replacement (one target): the new library may be of another kind of module;
    /// when the old version does not reach quiescence because it is stuck in a handler, it is
    /// abandoned, the new version starts from an empty state and serves every message the old
    /// one had not.
    void force() { force_ = true; }
    /// Each new library is tried in a sandbox child before the host loads it; with `state`,
    /// the child also runs get_state() on the old version's checkpoint during voting.
    void preflight(bool state) {
        preflight_ = true;
        preflight_state_ = state;
    }
    /// Additions start from these saved checkpoints (by module name) instead of an empty
    /// state: a restart restoring its release. An addition whose get_state() refuses its
    /// checkpoint is taken out again and the transaction aborts.
    void seed(std::map<std::string, std::shared_ptr<const State>> states) {
        seeds_ = std::move(states);
    }
    /// The release made of this transaction keeps each commit-time checkpoint of at most
    /// Config::checkpoint_keep_bytes (undo()); without this call, or past the limit, the
    /// checkpoint is handed to the new version by move (take_state) and kept nowhere.
    void keep_checkpoints() { keep_checkpoints_ = true; }
    /// An outside party decides too: asked once every target voted yes (empty: commit).
    void agree(std::function<std::string()> agree) { agree_ = std::move(agree); }
    /// Before run(): target `name` (validated) runs as `options` say.
    void options(const std::string& name, TargetOptions options);
    /// After a commit: what it takes to undo each replacement (the release).
    std::vector<ReleaseTarget> undo() const;

private:
    struct Target;
    enum class Phase { prepare, vote, complete, start, serve };

    // The steps of one target, in order. Each throws Error; step() records the reason once.
    void prepare(Target& t);  // load the library, create the instance, initialize()
    void launch(Target& t);   // prepare's first half: the instance created, its thread started
    void try_first(Target& t, const std::string& path, const std::string& copy);  // preflight
    std::function<void(const std::string&, const std::string&)> vet(Target& t);
    void check_kind(const Target& t, const std::string& path, const std::string& kind) const;
    void try_state(Target& t, const State& state);  // get_state() in the preflight child
    void drain(Target& t);               // vote's first half: the old version told to drain
    void vote(Target& t);                // quiescence and checkpoint of the old version (CanCommit)
    bool direct(const Target& t) const;  // the old version may start the new one itself
    StateHandover restore(Target& t);    // the checkpoint for the new version
    void commit(Target& t);              // the new version takes the module
    void abort(Target& t);               // the old version keeps it; the new one is discarded
    void start(Target& t);        // every target starts together, after the barrier: enable()
    void begin_start(Target& t);  // start's first half: the new (or old) version told to start
    void serve(Target& t);        // the new versions serve and the old ones end (or all go back)
    void settle(Target& t);       // serve's first half: the old version told to end
    void measure(Target& t);      // the blackout, once the new version serves
    void dispose(Target& t, ModuleProxy::Task task);
    void await_enabled(Target& t);
    void describe_transfer(Target& t, const State& state, bool converted);
    void remember(Target& t);
    void keep_checkpoint(Target& t);
    std::optional<std::size_t> keep_limit() const;  // of a checkpoint the release keeps
    StateHandover give_back(Target& t, bool started);

    void step(Phase phase, Target& t);
    void decide(Phase phase);
    void in_turn();
    void on_slaves();
    void in_waves();
    void begin(Phase phase, Target& t);
    std::string first_error() const;
    void trace(Step step, const Target& t, const std::string& version);

    UpgraderParts& parts_;
    TransactionReport& report_;
    Announce announce_;
    std::vector<Target> targets_;
    bool late_additions_ = false;
    bool hold_ = false;  // a group: new versions wait after enable() until all have enabled
    bool force_ = false;
    bool preflight_ = false;
    bool preflight_state_ = false;
    bool keep_checkpoints_ = false;
    std::map<std::string, std::shared_ptr<const State>> seeds_;
    std::function<std::string()> agree_;
    std::chrono::milliseconds timeout_{0};
    bool commit_ = true;
    std::string reason_;
};

}  // namespace nonstop::detail
