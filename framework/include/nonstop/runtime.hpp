// The object a host server embeds: it owns one of each service (name service, event manager,
// version repository, timers, upgrader) and is the process's access point to them — the
// thesis's singletons as one object that tests can also build on their own. Everything a host
// does goes through here; the services themselves are private to the framework.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nonstop/change.hpp"
#include "nonstop/config.hpp"
#include "nonstop/event_tag.hpp"
#include "nonstop/export.hpp"
#include "nonstop/library_info.hpp"
#include "nonstop/lifecycle_event.hpp"
#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"
#include "nonstop/port.hpp"
#include "nonstop/release_transition.hpp"
#include "nonstop/store_records.hpp"
#include "nonstop/transaction_options.hpp"
#include "nonstop/transaction_report.hpp"

namespace nonstop {

class NONSTOP_API Runtime {
public:
    explicit Runtime(Config config = {});
    /// Removes every module (each serves its queue first) and stops the timers.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// The process-wide runtime, built with the default Config (and NONSTOP_MODULE_PATH) on
    /// first use.
    static Runtime& instance();
    const Config& config() const;

    // --- The upgrader's commands (thesis table 4.1). One transaction runs at a time; a
    // --- command issued meanwhile waits its turn. Each returns the transaction's report.

    /// Adds a module (Load).
    TransactionReport load(const std::string& name, const std::string& library);
    /// Removes a module once it has served everything accepted (Unload). With `force`, a
    /// module that does not reach quiescence because it is stuck in a handler is removed all
    /// the same: its instance is abandoned and the report counts the messages it never served.
    TransactionReport unload(const std::string& name, bool force = false);
    /// Replaces a module's implementation, state and queue carried over (Replace); the new
    /// library must declare the same kind of module. With `force`, the kind may differ (the
    /// report names both), and an old version stuck in a handler is abandoned without a
    /// checkpoint: the new
    /// version starts from an empty state (schema 0) and serves every message the old one had
    /// not; the report says what was lost.
    TransactionReport replace(const std::string& name, const std::string& library,
                              bool force = false);
    /// Lets a module initiate requests again (Enable).
    TransactionReport enable(const std::string& name);
    /// Stops a module from initiating requests; it still serves its queue (Disable).
    TransactionReport disable(const std::string& name);
    /// Replaces a group atomically: all new versions or none (Syn_Replace).
    TransactionReport syn_replace(const std::vector<Change>& changes, Mode mode = Mode::concurrent);
    /// An outside party's say in a transaction (a participant's side of a distributed two-phase
    /// commit): called once, after every target voted yes, while the old versions are quiescent
    /// and new input is buffered. Returns empty to commit, or the one-sentence reason to abort.
    /// It must not throw; it bounds its own wait.
    using Agreement = std::function<std::string()>;
    /// Syn_Replace that commits only if `agree` also says yes: prepare and vote locally, then
    /// commit or abort on an external decision.
    TransactionReport syn_replace(const std::vector<Change>& changes, Mode mode, Agreement agree);
    /// Adds a group atomically; they start together (Syn_Load).
    TransactionReport syn_load(const std::vector<Change>& changes, Mode mode = Mode::concurrent);
    /// Replaces the named modules that exist and adds the others, in one transaction ordered as
    /// thesis figure 4.12: additions load once every replaced module has voted yes, and
    /// everything starts together (Syn_Upgrade).
    TransactionReport syn_upgrade(const std::vector<Change>& changes, Mode mode = Mode::concurrent);
    /// The same with the roles stated: a listed addition whose name exists is rejected.
    TransactionReport syn_upgrade(const std::vector<Change>& replacements,
                                  const std::vector<Change>& additions, Mode mode);
    /// The commands above with per-transaction options: preflight of each new library in a
    /// sandbox child (and of the old version's checkpoint), and for replace, `force`.
    TransactionReport load(const std::string& name, const std::string& library,
                           const TransactionOptions& options);
    TransactionReport replace(const std::string& name, const std::string& library,
                              const TransactionOptions& options);
    TransactionReport syn_replace(const std::vector<Change>& changes, Mode mode,
                                  const TransactionOptions& options);
    TransactionReport syn_load(const std::vector<Change>& changes, Mode mode,
                               const TransactionOptions& options);
    TransactionReport syn_upgrade(const std::vector<Change>& changes, Mode mode,
                                  const TransactionOptions& options);
    TransactionReport syn_upgrade(const std::vector<Change>& replacements,
                                  const std::vector<Change>& additions, Mode mode,
                                  const TransactionOptions& options);
    /// The time limit for reaching quiescence (SetTimer).
    TransactionReport set_timer(std::chrono::milliseconds limit);
    std::chrono::milliseconds timer() const;
    /// Commands waiting for the transaction in progress to end.
    std::size_t queued() const;
    /// The latest `count` reports, oldest first (all kept ones when count is 0).
    std::vector<TransactionReport> history(std::size_t count = 0) const;

    // --- Probation and rollback (docs/architecture.md, "Probation, audits, rollback").

    /// How long a committed replacement stays provisional from now on (SetProbation); 0: off.
    /// Negative is refused (Error).
    void set_probation(std::chrono::milliseconds period);
    std::chrono::milliseconds probation() const;
    /// Makes provisional transaction `transaction` permanent now (Accept), or every provisional
    /// one when 0; returns the ids made permanent. Throws Error when there is none such.
    std::vector<std::uint64_t> accept(std::uint64_t transaction = 0);
    /// Undoes the latest committed transaction that replaced `name` (Rollback), all its
    /// modules as one atomic group, by the same two-phase commit, during or after probation.
    /// The newer versions are asked for a checkpoint in the older ones' schema
    /// (Module::put_state_for); without one the older version may refuse the newer state, and
    /// the rollback aborts with that reason, unless `from_checkpoint`: the older versions then
    /// restart from their commit-time checkpoints (refused when the release kept none: over
    /// Config::checkpoint_keep_bytes) and the report counts the messages whose effects that
    /// discards. No accepted message is lost either way.
    TransactionReport rollback(const std::string& name, bool from_checkpoint = false);
    /// The same for transaction `transaction` (rollback -transaction ID).
    TransactionReport rollback_transaction(std::uint64_t transaction, bool from_checkpoint = false);
    /// Calls `observer` each time a committed release changes standing: provisional at commit
    /// under probation, permanent (accepted, expired clean, or committed with probation off),
    /// rolled back (with the rule and the evidence). It runs in the thread that made the change
    /// (a command's, or the health monitor's), after the change; keep it short, it must not
    /// call observe/unobserve or issue commands. The same is published on the event manager as
    /// ("upgrader", "release"), payload "TRANSACTION STATE RULE: EVIDENCE". Returns a token for
    /// unobserve().
    std::uint64_t observe_releases(std::function<void(const ReleaseTransition&)> observer);

    /// Removes every module, each after it has served its queue (the destructor does too; a
    /// host calls it where it must stop its modules earlier, e.g. in an exit handler). With a
    /// state directory, each module's checkpoint is saved first.
    void unload_all();

    // --- The release store (Config::state_dir; without one these keep nothing).

    /// Restarts the permanent release kept in the state directory: the same modules, versions
    /// and enabled state, each from its last saved checkpoint, its library's SHA-256 verified
    /// (a module that cannot restart is an error for it alone). Imports the crash records of
    /// the previous run, and discards a transaction that was still provisional. A host calls
    /// it once, after its observers and module path are set and before it loads modules.
    RestoreReport restore();
    /// Takes a checkpoint of every serving module (or of `name`; Error when unknown): put_state
    /// runs in the module's own thread between two messages; saved to the store if any.
    std::vector<SavedCheckpoint> checkpoint(const std::string& name = {});
    /// Crash records (fatal signals in modules' threads), oldest first.
    std::vector<CrashRecord> crashes() const;
    /// The module libraries in the module path, read without loading them: of `name`'s kind
    /// (and its version history from the store), or of every kind when `name` is empty.
    VersionCatalogue versions(const std::string& name = {}) const;

    // --- Messages from host code.

    /// Sends a message; its sender is "host" unless set. False: unknown name, or the module
    /// refuses input (it is being removed).
    bool send(std::string_view to, Message m);
    /// A handle for sending to one module without a name lookup per message.
    std::optional<Port> port(std::string_view name) const;

    // --- Introspection.

    /// Every module, sorted by name.
    std::vector<ModuleInfo> modules() const;
    /// One module; empty if the name is unknown.
    std::optional<ModuleInfo> info(std::string_view name) const;
    /// Module instances given up on (a hook or handler past its limit) whose thread still
    /// runs; their libraries stay mapped until it ends.
    std::vector<AbandonedInstance> abandoned() const;
    /// Every library loaded now.
    std::vector<LibraryInfo> libraries() const;
    /// The event table.
    std::vector<EventTag> events() const;
    /// Directories searched, in order, for a library named without a '/'.
    std::vector<std::string> module_path() const;
    void set_module_path(std::vector<std::string> dirs);

    /// Calls `observer` for every lifecycle step of every module, in the thread that takes the
    /// step (keep it short; it must not call observe/unobserve). The same steps are published
    /// on the event manager as ("upgrader", "lifecycle"), payload "TRANSACTION MODULE VERSION
    /// STEP". Returns a token for unobserve(). Nothing is built while nobody listens.
    std::uint64_t observe(std::function<void(const LifecycleEvent&)> observer);
    /// Removes an observer (of either kind); once it returns, it is not running and will not run.
    void unobserve(std::uint64_t token);

private:
    struct NONSTOP_LOCAL Services;
    std::unique_ptr<Services> services_;
};

}  // namespace nonstop
