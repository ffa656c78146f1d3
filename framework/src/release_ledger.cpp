#include "release_ledger.hpp"

#include <algorithm>

namespace nonstop::detail {

ReleaseTransition CommittedRelease::transition(std::string rule, std::string evidence) const {
    ReleaseTransition t;
    t.transaction = id;
    t.command = command;
    t.state = state;
    t.rule = std::move(rule);
    t.evidence = std::move(evidence);
    t.probation = probation;
    t.time = std::chrono::system_clock::now();
    for (const auto& target : targets)
        t.modules.push_back(ModuleChange{target.name, target.old_version, target.new_version,
                                         target.old_path, target.old_sha256, target.new_path,
                                         target.new_sha256});
    return t;
}

void ReleaseLedger::add(CommittedRelease release) {
    std::vector<std::shared_ptr<const State>> dropped;  // released outside the lock
    std::lock_guard lock(mutex_);
    // A rollback needs the module to run the release's version still: an earlier release's
    // checkpoint of a module this one replaces can never be used again.
    for (auto& earlier : releases_)
        for (auto& t : earlier.targets)
            for (const auto& now : release.targets)
                if (t.name == now.name && t.old_checkpoint) {
                    dropped.push_back(std::move(t.old_checkpoint));
                    t.no_checkpoint =
                        "transaction " + std::to_string(release.id) + " replaced the module again";
                }
    releases_.push_back(std::move(release));
    // Forget the oldest settled ones first: a provisional release is never dropped.
    while (releases_.size() > std::max<std::size_t>(1, capacity_)) {
        auto settled = std::find_if(
            releases_.begin(), releases_.end(),
            [](const CommittedRelease& r) { return r.state != ReleaseState::provisional; });
        if (settled == releases_.end()) break;
        releases_.erase(settled);
    }
}

std::optional<CommittedRelease> ReleaseLedger::find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    for (const auto& r : releases_)
        if (r.id == id) return r;
    return std::nullopt;
}

std::optional<CommittedRelease> ReleaseLedger::last_touching(const std::string& name) const {
    std::lock_guard lock(mutex_);
    for (auto r = releases_.rbegin(); r != releases_.rend(); ++r) {
        if (r->state == ReleaseState::rolled_back) continue;
        for (const auto& t : r->targets)
            if (t.name == name) return *r;
    }
    return std::nullopt;
}

std::optional<CommittedRelease> ReleaseLedger::provisional_of(const std::string& name) const {
    std::lock_guard lock(mutex_);
    for (const auto& r : releases_) {
        if (r.state != ReleaseState::provisional) continue;
        for (const auto& t : r.targets)
            if (t.name == name) return r;
    }
    return std::nullopt;
}

std::vector<CommittedRelease> ReleaseLedger::provisional() const {
    std::lock_guard lock(mutex_);
    std::vector<CommittedRelease> out;
    for (const auto& r : releases_)
        if (r.state == ReleaseState::provisional) out.push_back(r);
    return out;
}

std::optional<CommittedRelease> ReleaseLedger::settle(std::uint64_t id, ReleaseState to) {
    std::vector<std::shared_ptr<Library>> unmapped;  // released outside the lock
    std::vector<std::shared_ptr<const State>> dropped;
    std::optional<CommittedRelease> before;
    {
        std::lock_guard lock(mutex_);
        for (auto& r : releases_) {
            if (r.id != id) continue;
            const bool allowed =
                r.state == ReleaseState::provisional ||
                (r.state == ReleaseState::permanent && to == ReleaseState::rolled_back);
            if (!allowed) return std::nullopt;
            before = r;
            r.state = to;
            for (auto& t : r.targets) {
                unmapped.push_back(std::move(t.old_library));
                if (to == ReleaseState::rolled_back) dropped.push_back(std::move(t.old_checkpoint));
            }
            break;
        }
    }
    return before;
}

}  // namespace nonstop::detail
