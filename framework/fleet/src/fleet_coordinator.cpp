#include "fleet_coordinator.hpp"

#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <filesystem>

#include "nonstop/error.hpp"
#include "nonstop/runtime.hpp"
#include "zk_session.hpp"

namespace nonstop {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(250);

bool in(const std::string& s, std::initializer_list<const char*> set) {
    for (const char* x : set)
        if (s == x) return true;
    return false;
}

bool final_plan(const std::string& state) {
    return in(state, {"done", "rolled-back", "aborted", "committed"});
}

std::int64_t number(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoll(s);
    } catch (const std::exception&) {
        return 0;
    }
}

}  // namespace

FleetCoordinator::FleetCoordinator(ZkSession& session, const FleetConfig& config, Runtime* runtime)
    : session_(session), config_(config), runtime_(runtime), paths_(config.cluster) {}

std::vector<MemberInfo> FleetCoordinator::members() {
    std::vector<MemberInfo> out;
    auto ids = session_.children(paths_.members);
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids) {
        const auto text = session_.get(paths_.member(id));
        if (!text) continue;  // left meanwhile
        const auto r = Record::parse(*text);
        MemberInfo m;
        m.id = id;
        m.host = r.get("host");
        m.pid = static_cast<long>(number(r.get("pid")));
        m.health = r.get("health");
        m.sessions = static_cast<std::uint64_t>(number(r.get("sessions")));
        for (const auto& line : r.all("module")) {
            auto f = fields(line, 6);  // name version sha256 handled status library
            m.modules.push_back(
                {f[0], f[1], f[2], static_cast<std::uint64_t>(number(f[3])), f[4], f[5]});
        }
        out.push_back(std::move(m));
    }
    return out;
}

// The library every member loads: an absolute path (the fleet's hosts share their file layout);
// a bare name is looked up in this process's module path.
std::string FleetCoordinator::resolve(const std::string& library) const {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (library.find('/') == std::string::npos && runtime_)
        for (const auto& dir : runtime_->module_path())
            if (fs::exists(fs::path(dir) / library, ec))
                return fs::absolute(fs::path(dir) / library, ec).string();
    if (!fs::exists(library, ec)) throw Error("there is no library '" + library + "'");
    return fs::absolute(library, ec).string();
}

std::string FleetCoordinator::create_plan(Record spec, const std::vector<std::string>& members) {
    // Who made the plan: each member's release store names it as the issuer of its work.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    spec.set("coordinator", (config_.member.empty() ? "coordinator" : "member " + config_.member) +
                                " on " + host + " pid " + std::to_string(::getpid()) +
                                ", cluster " + config_.cluster);
    if (!ensured_) session_.ensure(paths_.plans);
    ensured_ = true;
    std::string created;
    session_.create(paths_.plans + "/plan-", spec.text(), ZOO_SEQUENCE, &created);
    const std::string id = created.substr(created.rfind('/') + 1);
    // The slots in one operation: a member sees all of them or none.
    std::vector<std::pair<std::string, std::string>> nodes{{paths_.plan(id) + "/m", ""}};
    int order = 0;
    for (const auto& m : members) {
        Record slot;
        slot.set("state", spec.get("kind") == "rolling" ? "pending" : "prepare")
            .set("order", std::to_string(order++));
        nodes.emplace_back(paths_.slot(id, m), slot.text());
    }
    session_.create_all(nodes);
    return id;
}

PlanReport FleetCoordinator::replace(const std::string& name, const std::string& library, int batch,
                                     std::chrono::milliseconds probation) {
    if (batch < 1) throw Error("a batch holds at least one member");
    const auto path = resolve(library);
    const auto digest = file_sha256(path);
    std::vector<std::string> targets;
    for (const auto& m : members())
        for (const auto& mod : m.modules)
            if (mod.name == name) targets.push_back(m.id);
    if (targets.empty())
        throw Error("no member of cluster '" + config_.cluster + "' runs a module named '" + name +
                    "'");
    Record spec;
    spec.set("kind", "rolling")
        .set("state", "running")
        .set("command", "fleet replace " + name + " " + library + " -batch " +
                            std::to_string(batch) + " -probation " +
                            std::to_string(static_cast<double>(probation.count()) / 1000.0))
        .set("name", name)
        .set("library", path)
        .set("sha256", digest)
        .set("batch", std::to_string(batch))
        .set("probation_ms", std::to_string(probation.count()))
        .set("created", std::to_string(now_ms()));
    return drive(create_plan(spec, targets));
}

PlanReport FleetCoordinator::syn_replace(const std::vector<Change>& changes) {
    if (changes.empty()) throw Error("a fleet transaction needs at least one change");
    Record spec;
    spec.set("kind", "atomic").set("state", "voting").set("created", std::to_string(now_ms()));
    std::string command = "fleet syn_replace";
    std::set<std::string> names;
    for (const auto& c : changes) {
        const auto path = resolve(c.library);
        spec.add("change", c.name + " " + file_sha256(path) + " " + path);
        command += " " + c.name + " " + c.library;
        names.insert(c.name);
    }
    spec.set("command", command);
    std::vector<std::string> targets;
    for (const auto& m : members())
        if (std::any_of(m.modules.begin(), m.modules.end(),
                        [&](const MemberModule& mod) { return names.count(mod.name) > 0; }))
            targets.push_back(m.id);
    if (targets.empty())
        throw Error("no member of cluster '" + config_.cluster + "' runs any of these modules");
    return drive(create_plan(spec, targets));
}

// --- Driving ---------------------------------------------------------------------------------

// The driver node: one coordinator drives a plan at a time. A dead driver's node goes with its
// session, so a resume waits up to twice the session timeout for it.
void FleetCoordinator::take(const std::string& id) {
    if (!session_.exists(paths_.plan(id))) throw Error("there is no plan '" + id + "'");
    const auto limit =
        std::chrono::steady_clock::now() + 2 * config_.session_timeout + std::chrono::seconds(1);
    Record me;
    me.set("pid", std::to_string(::getpid()));
    while (!session_.create(paths_.plan(id) + "/driver", me.text(), ZOO_EPHEMERAL)) {
        const auto seen = session_.generation();
        if (std::chrono::steady_clock::now() >= limit)
            throw Error("plan '" + id + "' is being driven by another coordinator");
        if (session_.exists(paths_.plan(id) + "/driver", true)) session_.wait_change(seen, kPoll);
    }
}

void FleetCoordinator::release(const std::string& id) {
    session_.remove(paths_.plan(id) + "/driver");
}

PlanReport FleetCoordinator::drive(const std::string& id) {
    take(id);
    try {
        const auto spec = Record::parse(session_.get(paths_.plan(id)).value_or(""));
        if (spec.get("kind") == "rolling")
            drive_rolling(id);
        else
            drive_atomic(id);
    } catch (...) {
        release(id);
        throw;
    }
    release(id);
    return report(id);
}

FleetCoordinator::Slots FleetCoordinator::slots(const std::string& id, bool watch) {
    Slots out;
    const auto names = session_.children(paths_.plan(id) + "/m", watch);
    std::vector<std::string> paths;
    for (const auto& m : names) paths.push_back(paths_.slot(id, m));
    const auto texts = session_.get_many(paths, watch);
    for (std::size_t i = 0; i < names.size(); ++i)
        if (texts[i]) out[names[i]] = Record::parse(*texts[i]);
    return out;
}

std::set<std::string> FleetCoordinator::alive(bool watch) {
    auto ids = session_.children(paths_.members, watch);
    return {ids.begin(), ids.end()};
}

void FleetCoordinator::put(const std::string& id, const std::string& member, const Record& slot) {
    session_.set(paths_.slot(id, member), slot.text());
}

void FleetCoordinator::set_state(const std::string& id, Record& spec, const std::string& state,
                                 const std::string& reason) {
    spec.set("state", state);
    if (!reason.empty() && spec.get("reason").empty()) spec.set("reason", reason);
    if (final_plan(state)) spec.set("ended", std::to_string(now_ms()));
    session_.set(paths_.plan(id), spec.text());
}

void FleetCoordinator::drive_rolling(const std::string& id) {
    for (;;) {
        const auto seen = session_.generation();
        auto spec = Record::parse(session_.get(paths_.plan(id), true).value_or(""));
        if (final_plan(spec.get("state"))) return;
        auto s = slots(id, true);
        const auto members = alive(true);
        if (spec.get("abort") == "requested" && spec.get("state") == "running")
            set_state(id, spec, "rolling-back", "aborted by an operator");
        if (spec.get("state") == "rolling-back") {
            if (rollback_step(id, s, members)) {
                set_state(id, spec, spec.get("abort") == "requested" ? "aborted" : "rolled-back");
                return;
            }
        } else if (rolling_step(id, spec, s, members)) {
            return;
        }
        session_.wait_change(seen, kPoll);
    }
}

// The members upgrading or upgraded so far: one that left or overran its step fails. Counts
// those still upgrading and the time the latest finished; returns the first failure.
std::string FleetCoordinator::in_flight(const std::string& id, Slots& s,
                                        const std::set<std::string>& members,
                                        std::int64_t probation_ms, int& busy,
                                        std::int64_t& last_done) {
    const auto now = now_ms();
    std::string failure;
    for (auto& [m, slot] : s) {
        const auto state = slot.get("state");
        if (in(state, {"work", "upgrading", "probation"})) {
            ++busy;
            const auto limit = config_.step_timeout.count() + probation_ms;
            if (!members.count(m))
                put(id, m,
                    slot.set("state", "failed")
                        .set("reason", "member '" + m + "' left the fleet during its " +
                                           (state == "probation" ? "probation" : "upgrade")));
            else if (now - number(slot.get("assigned")) > limit)
                put(id, m,
                    slot.set("state", "failed")
                        .set("reason", "member '" + m + "' did not finish its upgrade within " +
                                           std::to_string(limit) + " ms"));
        } else if (state == "done") {
            last_done = std::max(last_done, number(slot.get("at")));
            if (!members.count(m))
                put(id, m,
                    slot.set("state", "failed")
                        .set("reason", "member '" + m + "' left the fleet during the ripple"));
        }
        if (slot.get("state") == "failed" && failure.empty())
            failure = "member '" + m + "' failed: " + slot.get("reason");
    }
    return failure;
}

// One look at a running rolling plan; true once it is done. At most `batch` members upgrade at
// once; the next batch starts once each member of the last one reported its release permanent
// (its runtime's probation ended clean) and every upgraded member's node still says healthy.
bool FleetCoordinator::rolling_step(const std::string& id, Record& spec, Slots& s,
                                    const std::set<std::string>& members) {
    const auto now = now_ms();
    int busy = 0;
    std::int64_t last_done = 0;
    const auto failure =
        in_flight(id, s, members, number(spec.get("probation_ms")), busy, last_done);
    if (!failure.empty()) {
        set_state(id, spec, "rolling-back", failure);
        return false;
    }
    if (busy > 0) return false;
    // The members already upgraded are still healthy (e.g. no module failed or stuck since).
    for (const auto& info : last_done > 0 ? this->members() : std::vector<MemberInfo>())
        if (s.count(info.id) && s[info.id].get("state") == "done" && info.health != "ok") {
            put(id, info.id,
                s[info.id]
                    .set("state", "failed")
                    .set("reason", "failed its probation: " + info.health));
            set_state(id, spec, "rolling-back",
                      "member '" + info.id + "' failed its probation: " + info.health);
            return false;
        }
    std::vector<std::pair<std::int64_t, std::string>> pending;
    for (auto& [m, slot] : s) {
        if (slot.get("state") != "pending") continue;
        if (!members.count(m))
            put(id, m,
                slot.set("state", "skipped")
                    .set("reason", "member '" + m + "' left the fleet before its turn"));
        else
            pending.emplace_back(number(slot.get("order")), m);
    }
    if (pending.empty()) {
        set_state(id, spec, "done");
        return true;
    }
    std::sort(pending.begin(), pending.end());
    const auto batch = std::max<std::int64_t>(1, number(spec.get("batch")));
    for (std::int64_t i = 0; i < batch && i < static_cast<std::int64_t>(pending.size()); ++i) {
        auto& slot = s[pending[static_cast<std::size_t>(i)].second];
        put(id, pending[static_cast<std::size_t>(i)].second,
            slot.set("state", "work").set("assigned", std::to_string(now)));
    }
    return false;
}

// Rolls the upgraded members back to the library each recorded; true once none is left.
bool FleetCoordinator::rollback_step(const std::string& id, Slots& s,
                                     const std::set<std::string>& members) {
    bool left = false;
    for (auto& [m, slot] : s) {
        const auto state = slot.get("state");
        if (state == "done") {
            if (members.count(m)) {
                put(id, m, slot.set("state", "rollback"));
                left = true;
            } else {
                put(id, m,
                    slot.set("state", "rollback-failed")
                        .set("reason", "member '" + m + "' left the fleet before its rollback"));
            }
        } else if (state == "probation" && members.count(m)) {
            put(id, m, slot.set("state", "rollback"));  // its runtime rolls the release back
            left = true;
        } else if (in(state, {"rollback", "work", "upgrading", "probation"})) {
            if (members.count(m))
                left = true;
            else
                put(id, m,
                    slot.set("state", state == "rollback" ? "rollback-failed" : "failed")
                        .set("reason", "member '" + m + "' left the fleet"));
        } else if (state == "pending") {
            put(id, m, slot.set("state", "skipped").set("reason", "the ripple stopped before it"));
        }
    }
    return !left;
}

// The atomic fleet transaction: votes, one decision written once, every member applies it.
void FleetCoordinator::drive_atomic(const std::string& id) {
    const auto decision_path = paths_.plan(id) + "/decision";
    for (;;) {
        const auto seen = session_.generation();
        auto spec = Record::parse(session_.get(paths_.plan(id), true).value_or(""));
        if (final_plan(spec.get("state"))) return;
        auto s = slots(id, true);
        const auto members = alive(true);
        bool decided = session_.exists(decision_path);
        if (!decided) {
            bool now = false;
            auto reason = atomic_verdict(spec, s, members, now);
            if (spec.get("abort") == "requested") {
                now = true;
                reason = "aborted by an operator";
            }
            if (now) {
                Record d;
                d.set("decision", reason.empty() ? "commit" : "abort").set("reason", reason);
                session_.create(decision_path, d.text());  // written once: a second one loses
                session_.poke();
                continue;
            }
        } else {
            const auto d = Record::parse(session_.get(decision_path).value_or(""));
            bool open = false;
            std::string pending;
            for (auto& [m, slot] : s)
                if (in(slot.get("state"), {"prepare", "yes"})) {
                    if (members.count(m))
                        open = true;
                    else
                        pending += (pending.empty() ? "" : ", ") + m;
                }
            const bool overdue = now_ms() - number(spec.get("created")) >
                                 (config_.vote_timeout + config_.step_timeout).count();
            if (!open || overdue) {
                const bool commit = d.get("decision") == "commit";
                std::string reason = commit ? std::string() : d.get("reason");
                if (!pending.empty())
                    reason += (reason.empty() ? "" : "; ") + std::string("member(s) ") + pending +
                              " left before applying the decision and apply it when they return";
                set_state(id, spec, commit ? "committed" : "aborted", reason);
                return;
            }
        }
        session_.wait_change(seen, kPoll);
    }
}

// Whether the votes allow a decision now (`decided`), and if so the reason to abort (empty:
// commit): any no, a participant gone before the decision, or the vote timeout.
std::string FleetCoordinator::atomic_verdict(const Record& spec, const Slots& s,
                                             const std::set<std::string>& members, bool& decided) {
    decided = true;
    bool waiting = false;
    for (const auto& [m, slot] : s) {
        const auto state = slot.get("state");
        if (in(state, {"no", "failed", "aborted"}))
            return "member '" + m + "' voted no: " + slot.get("reason");
        if (!members.count(m)) return "member '" + m + "' left the fleet before the decision";
        if (state != "yes") waiting = true;
    }
    if (!waiting) return {};
    if (now_ms() - number(spec.get("created")) > config_.vote_timeout.count())
        return "not every member voted within " + std::to_string(config_.vote_timeout.count()) +
               " ms";
    decided = false;
    return {};
}

PlanReport FleetCoordinator::resume(const std::string& id) {
    const auto spec = Record::parse(session_.get(paths_.plan(id)).value_or(""));
    if (final_plan(spec.get("state"))) return report(id);
    return drive(id);
}

PlanReport FleetCoordinator::abort(const std::string& id) {
    auto text = session_.get(paths_.plan(id));
    if (!text) throw Error("there is no plan '" + id + "'");
    auto spec = Record::parse(*text);
    if (final_plan(spec.get("state"))) return report(id);
    spec.set("abort", "requested");
    session_.set(paths_.plan(id), spec.text());
    return drive(id);
}

PlanReport FleetCoordinator::report(const std::string& id) {
    auto text = session_.get(paths_.plan(id));
    if (!text) throw Error("there is no plan '" + id + "'");
    const auto spec = Record::parse(*text);
    PlanReport r;
    r.id = id;
    r.kind = spec.get("kind");
    r.command = spec.get("command");
    r.state = spec.get("state");
    r.reason = spec.get("reason");
    if (auto d = session_.get(paths_.plan(id) + "/decision"))
        r.decision = Record::parse(*d).get("decision");
    for (const auto& [m, slot] : slots(id, false)) {
        MemberOutcome o;
        o.member = m;
        o.state = slot.get("state");
        o.before = slot.get("before");
        o.after = slot.get("after");
        o.blackout_ms = slot.get("blackout_ms").empty() ? 0 : std::stod(slot.get("blackout_ms"));
        o.reason = slot.get("reason");
        o.release = slot.get("release");
        o.transaction = static_cast<std::uint64_t>(number(slot.get("transaction")));
        r.members.push_back(std::move(o));
    }
    return r;
}

std::vector<PlanReport> FleetCoordinator::history() {
    auto ids = session_.children(paths_.plans);
    std::sort(ids.begin(), ids.end());
    std::vector<PlanReport> out;
    for (const auto& id : ids) out.push_back(report(id));
    return out;
}

}  // namespace nonstop
