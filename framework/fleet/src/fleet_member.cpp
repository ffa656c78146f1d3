#include "fleet_member.hpp"

#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include "nonstop/error.hpp"
#include "nonstop/issuer.hpp"
#include "nonstop/runtime.hpp"
#include "zk_session.hpp"

namespace nonstop {

namespace {

std::string hostname() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return name;
}

std::string ms_text(std::chrono::nanoseconds d) {
    char out[32];
    std::snprintf(out, sizeof out, "%.3f", static_cast<double>(d.count()) / 1e6);
    return out;
}

// Who issues the local transactions a plan asks of this member, as its release store records
// them: the plan and the coordinator that made it.
std::string issuer(const std::string& plan, const Record& spec, const std::string& how = {}) {
    const auto by = spec.get("coordinator");
    return "fleet plan " + plan + (by.empty() ? std::string() : " (" + by + ")") + how;
}

constexpr std::size_t kSettledKept = 64;

// A number written by this code into a slot or a plan; 0 if absent or garbled.
std::uint64_t to_u64(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoull(s);
    } catch (const std::exception&) {
        return 0;
    }
}

}  // namespace

FleetMember::FleetMember(ZkSession& session, const FleetConfig& config, Runtime& runtime)
    : session_(session), config_(config), runtime_(runtime), paths_(config.cluster) {
    if (const char* f = std::getenv("NONSTOP_FLEET_FAULT")) fault_ = f;
    enroll();
    session_.on_new_session([this] {
        reenroll_ = true;
        session_.poke();
    });
    observer_ = runtime_.observe([this](const LifecycleEvent&) {
        dirty_ = true;
        session_.poke();
    });
    release_observer_ = runtime_.observe_releases([this](const ReleaseTransition& t) {
        if (t.state == ReleaseState::provisional) return;
        {
            std::lock_guard lock(releases_mutex_);
            settled_[t.transaction] = t;
            while (settled_.size() > kSettledKept) settled_.erase(settled_.begin());
        }
        session_.poke();
    });
    worker_ = std::thread([this] { work(); });
}

FleetMember::~FleetMember() {
    runtime_.unobserve(observer_);
    runtime_.unobserve(release_observer_);
    stop_ = true;
    session_.poke();
    if (worker_.joinable()) worker_.join();
    for (auto& [plan, voter] : voters_) voter.join();
    try {
        session_.remove(paths_.member(config_.member));
    } catch (const Error&) {
        // The session ends with this process anyway, and the node with it.
    }
}

// The ephemeral node. A node left by an earlier process under the same id (killed, its session
// not yet expired) is waited out for a while, then taken over.
void FleetMember::enroll() {
    session_.ensure(paths_.members);
    session_.ensure(paths_.plans);
    const auto path = paths_.member(config_.member);
    const auto limit = std::chrono::steady_clock::now() + 2 * config_.session_timeout;
    while (!session_.create(path, describe(), ZOO_EPHEMERAL)) {
        const auto seen = session_.generation();
        if (std::chrono::steady_clock::now() >= limit) {
            session_.remove(path);
            continue;
        }
        if (session_.exists(path, true)) session_.wait_change(seen, std::chrono::milliseconds(200));
    }
    dirty_ = false;
}

std::string FleetMember::describe() const {
    Record r;
    r.set("host", hostname()).set("pid", std::to_string(::getpid()));
    std::map<std::string, std::string> digests;
    for (const auto& l : runtime_.libraries()) digests[l.path] = l.sha256;
    std::string health = "ok";
    for (const auto& m : runtime_.modules()) {
        r.add("module", m.name + " " + m.version + " " + digests[m.library] + " " +
                            std::to_string(m.handled) + " " + to_string(m.status) + " " +
                            m.library);
        if (health == "ok" && m.stuck) health = "module '" + m.name + "' is stuck in " + m.stuck_in;
        if (health == "ok" && m.status == ModuleStatus::failed)
            health = "module '" + m.name + "' failed";
    }
    r.set("health", health).set("sessions", std::to_string(session_.sessions()));
    return r.text();
}

void FleetMember::work() {
    auto refreshed = std::chrono::steady_clock::now();
    bool complained = false;
    while (!stop_) {
        const auto seen = session_.generation();
        try {
            if (reenroll_.exchange(false)) enroll();
            const auto now = std::chrono::steady_clock::now();
            if (dirty_.exchange(false) || now - refreshed >= config_.refresh_period) {
                session_.set(paths_.member(config_.member), describe());
                refreshed = now;
            }
            serve_plans();
            complained = false;
        } catch (const Error& e) {
            // ZooKeeper away: the member keeps serving its modules and tries again.
            if (!complained) std::fprintf(stderr, "nonstop fleet: %s\n", e.what());
            complained = true;
            if (!session_.exists(paths_.member(config_.member))) reenroll_ = true;
        }
        session_.wait_change(seen, std::chrono::milliseconds(250));
    }
}

void FleetMember::serve_plans() {
    for (const auto& plan : session_.children(paths_.plans, true)) {
        if (finished_.count(plan)) continue;
        const auto spec_text = session_.get(paths_.plan(plan));
        if (!spec_text) continue;
        const auto spec = Record::parse(*spec_text);
        const auto mine_text = session_.get(paths_.slot(plan, config_.member), true);
        if (!mine_text) {
            // The coordinator may be creating the plan's slots: watch for ours.
            if (session_.exists(paths_.slot(plan, config_.member), true)) {
                session_.poke();
                continue;
            }
            if (spec.get("state") != "running" && spec.get("state") != "voting")
                finished_.insert(plan);
            continue;
        }
        auto mine = Record::parse(*mine_text);
        const auto state = mine.get("state");
        static const std::set<std::string> final_states = {
            "done",    "failed", "rolled-back", "rollback-failed",
            "skipped", "no",     "committed",   "aborted"};
        const bool plan_over = spec.get("state") == "done" || spec.get("state") == "rolled-back" ||
                               spec.get("state") == "aborted" || spec.get("state") == "committed";
        if (final_states.count(state) && plan_over) {
            finished_.insert(plan);
            continue;
        }
        if (spec.get("kind") == "rolling")
            serve_rolling(plan, spec, std::move(mine));
        else if (spec.get("kind") == "atomic")
            serve_atomic(plan, spec, mine);
    }
}

// The member's node first: whoever sees the slot's outcome finds the member's versions
// already current.
void FleetMember::write(const std::string& plan, const Record& mine) {
    session_.set(paths_.member(config_.member), describe());
    session_.set(paths_.slot(plan, config_.member), mine.text());
}

std::string FleetMember::versions(const std::vector<std::string>& names) const {
    std::string out;
    for (const auto& n : names) {
        const auto info = runtime_.info(n);
        if (!out.empty()) out += ", ";
        out += n + " " + (info ? info->version : std::string("-"));
    }
    return out;
}

// A rolling replace: this member's own local transaction under the runtime's probation, and
// its rollback if the ripple fails.
void FleetMember::serve_rolling(const std::string& plan, const Record& spec, Record mine) {
    const auto state = mine.get("state");
    if (state == "work") {
        if (fault_ == "exit-on-work") std::_Exit(9);
        upgrade(plan, spec, std::move(mine));
    } else if (state == "probation") {
        await_probation(plan, std::move(mine));
    } else if (state == "rollback") {
        roll_back(plan, spec, std::move(mine));
    }
}

void FleetMember::upgrade(const std::string& plan, const Record& spec, Record mine) {
    const auto name = spec.get("name");
    const auto info = runtime_.info(name);
    if (!info) {
        write(plan, mine.set("state", "failed")
                        .set("reason", "member '" + config_.member + "' runs no module named '" +
                                           name + "'"));
        return;
    }
    mine.set("state", "upgrading").set("previous", info->library).set("before", versions({name}));
    write(plan, mine);
    const auto library = spec.get("library");
    std::string digest;
    try {
        digest = file_sha256(library);
    } catch (const Error& e) {
        write(plan, mine.set("state", "failed").set("reason", e.what()));
        return;
    }
    if (digest != spec.get("sha256")) {
        write(plan, mine.set("state", "failed")
                        .set("reason", "the library '" + library + "' has SHA-256 " + digest +
                                           " on member '" + config_.member + "', the plan says " +
                                           spec.get("sha256")));
        return;
    }
    IssuerScope by(issuer(plan, spec));
    // The plan's probation is this one transaction's, watched by this runtime's health rules.
    TransactionOptions options;
    if (const auto ms = to_u64(spec.get("probation_ms")); ms > 0)
        options.probation = std::chrono::milliseconds(static_cast<long long>(ms));
    auto report = runtime_.replace(name, library, options);
    if (report.ok() && !report.targets.empty() &&
        report.targets.front().sha256 != spec.get("sha256")) {
        // The file changed between the check and the load: what runs is not what the plan
        // names, so it goes back at once.
        if (report.probation.count() > 0)
            runtime_.rollback_transaction(report.id);
        else
            runtime_.replace(name, info->library);
        report.outcome = Outcome::aborted;
        report.reason = "the library '" + library + "' changed while member '" + config_.member +
                        "' loaded it (SHA-256 " + report.targets.front().sha256 + ")";
    }
    mine.set("after", versions({name})).set("at", std::to_string(now_ms()));
    if (!report.ok()) {
        write(plan, mine.set("state", "failed").set("reason", report.reason));
        return;
    }
    if (!report.targets.empty()) mine.set("blackout_ms", ms_text(report.targets.front().blackout));
    mine.set("transaction", std::to_string(report.id));
    if (report.probation.count() == 0) {
        write(plan, mine.set("state", "done").set("release", "permanent (no probation)"));
        return;
    }
    // Provisional: the slot says so until the runtime makes the release permanent or rolls it
    // back (await_probation, on this worker's next passes).
    write(plan, mine.set("state", "probation").set("pid", std::to_string(::getpid())));
    await_probation(plan, std::move(mine));
}

// The runtime's verdict on the release this member made for the plan, once there is one.
void FleetMember::await_probation(const std::string& plan, Record mine) {
    if (mine.get("pid") != std::to_string(::getpid())) {
        // An earlier life of this member: its provisional release died with it (a restart
        // discards a provisional release).
        write(plan,
              mine.set("state", "failed")
                  .set("reason", "member '" + config_.member + "' restarted during its probation"));
        return;
    }
    const auto transaction = to_u64(mine.get("transaction"));
    std::optional<ReleaseTransition> t;
    {
        std::lock_guard lock(releases_mutex_);
        if (auto it = settled_.find(transaction); it != settled_.end()) t = it->second;
    }
    if (!t) return;
    const std::string why = t->rule + (t->evidence.empty() ? std::string() : ": " + t->evidence);
    mine.set("at", std::to_string(now_ms()));
    if (t->state == ReleaseState::permanent) {
        write(plan, mine.set("state", "done").set("release", "permanent (" + why + ")"));
        return;
    }
    mine.set("after", versions({t->modules.empty() ? std::string() : t->modules.front().name}));
    write(plan, mine.set("state", "failed")
                    .set("release", "rolled back (" + why + ")")
                    .set("reason", "transaction " + std::to_string(transaction) +
                                       " was rolled back by rule '" + t->rule + "'" +
                                       (t->evidence.empty() ? "" : ": " + t->evidence)));
}

void FleetMember::roll_back(const std::string& plan, const Record& spec, Record mine) {
    const auto name = spec.get("name");
    const auto previous = mine.get("previous");
    IssuerScope by(issuer(plan, spec, ", rolling back"));
    const auto info = runtime_.info(name);
    TransactionReport report;
    if (info && info->library == previous) {
        report.outcome = Outcome::committed;  // already back (the health monitor was first)
    } else if (info && info->provisional &&
               info->provisional_transaction == to_u64(mine.get("transaction"))) {
        // Still on probation: the runtime's own rollback, from the commit-time checkpoint if
        // the older version cannot read the newer state.
        report = runtime_.rollback_transaction(info->provisional_transaction);
        if (!report.ok())
            report = runtime_.rollback_transaction(info->provisional_transaction, true);
    } else {
        report = runtime_.replace(name, previous);
    }
    mine.set("after", versions({name}))
        .set("state", report.ok() ? "rolled-back" : "rollback-failed");
    if (!report.ok()) mine.set("reason", "the rollback failed: " + report.reason);
    write(plan, mine);
}

void FleetMember::serve_atomic(const std::string& plan, const Record& spec, const Record& mine) {
    {
        std::lock_guard lock(voting_mutex_);
        // This process voted on it: its voter writes the outcome, once (a slot read before the
        // voter wrote it may still say "prepare").
        if (voting_.count(plan) || voted_.count(plan)) return;
    }
    const auto state = mine.get("state");
    if (state == "prepare") {
        std::lock_guard lock(voting_mutex_);
        // Voters that ended (their plan left voting_) are joined here rather than kept.
        for (auto it = voters_.begin(); it != voters_.end();) {
            if (voting_.count(it->first)) {
                ++it;
                continue;
            }
            it->second.join();
            it = voters_.erase(it);
        }
        voting_.insert(plan);
        voted_.insert(plan);
        voters_.emplace(plan, std::thread([this, plan, spec] { prepare_and_vote(plan, spec); }));
    } else if (state == "yes") {
        // Voted yes in an earlier life of this member: the decision, once written, is applied.
        if (session_.exists(paths_.plan(plan) + "/decision", true)) apply_decided(plan, spec, mine);
    }
}

namespace {

std::vector<Change> changes_of(const Record& spec, std::vector<std::string>* digests,
                               std::vector<std::string>* names) {
    std::vector<Change> out;
    for (const auto& line : spec.all("change")) {
        auto f = fields(line, 3);  // name sha256 library
        out.push_back({f[0], f[2]});
        if (digests) digests->push_back(f[1]);
        if (names) names->push_back(f[0]);
    }
    return out;
}

}  // namespace

// Why this member cannot vote yes before preparing anything: a library whose content is not
// the plan's, or the tests' fault injection; empty if it can.
std::string FleetMember::refusal(const std::vector<Change>& changes,
                                 const std::vector<std::string>& digests) const {
    for (std::size_t i = 0; i < changes.size(); ++i) {
        std::string digest;
        try {
            digest = file_sha256(changes[i].library);
        } catch (const Error& e) {
            digest = e.what();
        }
        if (digest != digests[i])
            return "the library '" + changes[i].library + "' on member '" + config_.member +
                   "' does not have the plan's SHA-256";
    }
    if (fault_ == "vote-no") return "member '" + config_.member + "' was told to vote no";
    return {};
}

// The agreement's wait, once this member voted yes: the decision, or why there is none (the
// session ended, the member leaves, the vote timeout). Empty: commit.
std::string FleetMember::await_decision(const std::string& plan, std::uint64_t sessions) {
    const auto limit = std::chrono::steady_clock::now() + config_.vote_timeout;
    const auto decision_path = paths_.plan(plan) + "/decision";
    for (;;) {
        const auto seen = session_.generation();
        // exists() sets a watch on a node not created yet; get() would not.
        auto d = session_.exists(decision_path, true) ? session_.get(decision_path) : std::nullopt;
        if (d) {
            const auto decision = Record::parse(*d);
            if (decision.get("decision") != "commit")
                return "the fleet decided to abort: " + decision.get("reason");
            if (fault_ == "exit-after-decision") std::_Exit(9);
            return {};
        }
        if (stop_) return "member '" + config_.member + "' is leaving the fleet";
        if (session_.expired() || session_.sessions() != sessions)
            return "this member's ZooKeeper session ended before the fleet's decision";
        if (std::chrono::steady_clock::now() >= limit)
            return "no fleet decision came within " + std::to_string(config_.vote_timeout.count()) +
                   " ms";
        session_.wait_change(seen, std::chrono::milliseconds(100));
    }
}

void FleetMember::prepare_and_vote(const std::string& plan, Record spec) {
    std::vector<std::string> digests, names;
    const auto changes = changes_of(spec, &digests, &names);
    Record mine;
    mine.set("before", versions(names));
    bool voted = false;
    if (auto no = refusal(changes, digests); !no.empty()) {
        mine.set("state", "no").set("reason", no);
    } else {
        const auto sessions = session_.sessions();
        auto agree = [&]() -> std::string {
            voted = true;
            try {
                // The slot only: the vote is on the critical path, the member's node changes
                // later.
                Record yes = mine;
                session_.set(paths_.slot(plan, config_.member), yes.set("state", "yes").text());
                return await_decision(plan, sessions);
            } catch (const Error& e) {
                return std::string("the fleet's decision could not be read: ") + e.what();
            }
        };
        IssuerScope by(issuer(plan, spec));
        const auto report = runtime_.syn_replace(changes, Mode::concurrent, agree);
        mine.set("after", versions(names));
        if (report.ok()) {
            std::chrono::nanoseconds blackout{0};
            for (const auto& t : report.targets) blackout = std::max(blackout, t.blackout);
            mine.set("state", "committed").set("blackout_ms", ms_text(blackout));
        } else {
            mine.set("state", voted ? "aborted" : "no").set("reason", report.reason);
        }
    }
    try {
        write(plan, mine);
    } catch (const Error& e) {
        std::fprintf(stderr, "nonstop fleet: %s\n", e.what());
    }
    std::lock_guard lock(voting_mutex_);
    voting_.erase(plan);
    session_.poke();
}

void FleetMember::apply_decided(const std::string& plan, const Record& spec, Record mine) {
    const auto decision = Record::parse(*session_.get(paths_.plan(plan) + "/decision"));
    std::vector<std::string> names;
    const auto changes = changes_of(spec, nullptr, &names);
    // A host that just started may not have loaded its modules yet: their loading wakes this
    // worker again (the runtime's observer).
    for (const auto& n : names)
        if (!runtime_.info(n)) return;
    if (decision.get("decision") != "commit") {
        write(plan, mine.set("state", "aborted").set("reason", "the fleet decided to abort"));
        return;
    }
    IssuerScope by(issuer(plan, spec, ", applied after a restart"));
    const auto report = runtime_.syn_replace(changes);
    mine.set("after", versions(names));
    if (report.ok())
        mine.set("state", "committed").set("reason", "applied from ZooKeeper after a restart");
    else
        mine.set("state", "failed")
            .set("reason",
                 "the committed decision could not be applied after a restart: " + report.reason);
    write(plan, mine);
}

}  // namespace nonstop
