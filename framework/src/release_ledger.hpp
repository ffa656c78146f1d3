// The releases the upgrader committed, with what it takes to undo each: the old versions'
// libraries (held, so they stay mapped, while the release is provisional; path and digest
// after), the old state schema and the commit-time checkpoints. A leaf: it calls nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nonstop/module.hpp"
#include "nonstop/release_transition.hpp"

namespace nonstop::detail {

class Library;

/// One replaced module of a release.
struct ReleaseTarget {
    std::string name;
    std::string old_version, new_version;
    std::string old_path, old_sha256, new_path, new_sha256;
    std::shared_ptr<Library> old_library;  // held while provisional: the old code stays mapped
    std::weak_ptr<Library> new_library;    // to tell whether the module still runs this release
    std::uint32_t old_schema = 0;          // of the old version's checkpoint at commit
    /// Kept for `rollback -from-checkpoint` (Config::checkpoint_keep_bytes) while the module
    /// runs this release; dropped once it is replaced again or rolled back.
    std::shared_ptr<const State> old_checkpoint;
    std::string no_checkpoint;           // why old_checkpoint is empty
    std::uint64_t served_at_commit = 0;  // messages served (handled or failed) by then
    std::uint64_t failed_at_commit = 0;
};

struct CommittedRelease {
    std::uint64_t id = 0;
    std::string command;
    std::vector<ReleaseTarget> targets;
    ReleaseState state = ReleaseState::permanent;
    std::chrono::milliseconds probation{0};
    std::chrono::steady_clock::time_point deadline;  // provisional: end of probation
    /// The transition's public form (no libraries, no checkpoints).
    ReleaseTransition transition(std::string rule, std::string evidence) const;
};

class ReleaseLedger {
public:
    explicit ReleaseLedger(std::size_t capacity) : capacity_(capacity) {}
    /// Records a committed release; the oldest beyond the capacity are forgotten, and earlier
    /// releases drop their checkpoints of the modules it replaces (no longer usable).
    void add(CommittedRelease release);
    std::optional<CommittedRelease> find(std::uint64_t id) const;
    /// The newest release, not rolled back, that replaced `name`.
    std::optional<CommittedRelease> last_touching(const std::string& name) const;
    /// The provisional release that replaced `name`, if any.
    std::optional<CommittedRelease> provisional_of(const std::string& name) const;
    std::vector<CommittedRelease> provisional() const;
    /// provisional → permanent, or (provisional or permanent) → rolled_back; leaving
    /// probation drops the held old libraries, a rollback the checkpoints too. Returns the
    /// release as it was, or empty when it was not in a state that allows the move.
    std::optional<CommittedRelease> settle(std::uint64_t id, ReleaseState to);

private:
    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<CommittedRelease> releases_;
};

}  // namespace nonstop::detail
