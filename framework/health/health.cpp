#include "health.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "event_manager.hpp"
#include "module_proxy.hpp"
#include "name_service.hpp"
#include "nonstop/issuer.hpp"
#include "upgrader.hpp"

namespace nonstop::detail {

namespace {
std::string millis(std::chrono::nanoseconds d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}
}  // namespace

Health::Health(NameService& names, EventManager& events, Upgrader& upgrader, const Config& config)
    : names_(names), events_(events), upgrader_(upgrader), config_(config) {
    thread_ = std::thread([this] { run(); });
}

Health::~Health() { stop(); }

void Health::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Health::run() {
    const IssuerScope issuer("health monitor");  // its rollbacks, restarts and disables
    const auto period = std::max(config_.health_period, std::chrono::milliseconds(1));
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
        lock.unlock();
        for (const auto& release : upgrader_.ledger().provisional()) watch(release);
        if (config_.audit_period.count() > 0) audit_due();
        lock.lock();
    }
}

// One provisional release: its probation ends clean, or the first rule that trips rolls the
// whole release back.
void Health::watch(const CommittedRelease& release) {
    if (Clock::now() >= release.deadline) {
        upgrader_.expire(release.id);
        return;
    }
    if (given_up_.count(release.id) != 0) return;
    for (const auto& target : release.targets) {
        if (auto trip = tripped(release, target)) {
            roll_back(release, *trip);
            return;
        }
    }
}

std::optional<Health::Trip> Health::tripped(const CommittedRelease& release,
                                            const ReleaseTarget& target) {
    auto proxy = names_.find(target.name);
    // Only the release's own code is judged (the name may have been removed and loaded anew).
    if (!proxy || proxy->library() != target.new_library.lock()) return std::nullopt;
    const ModuleInfo info = proxy->info();
    if (info.in_transaction) return std::nullopt;
    const std::string who = "version " + target.new_version + " of module '" + target.name + "'";
    const std::string since = " since transaction " + std::to_string(release.id) + " committed";
    const std::uint64_t served = info.handled + info.failed;
    const std::uint64_t served_since =
        served > target.served_at_commit ? served - target.served_at_commit : 0;
    const std::uint64_t failures =
        info.failed > target.failed_at_commit ? info.failed - target.failed_at_commit : 0;
    const std::string tally = std::to_string(failures) + " of the " + std::to_string(served_since) +
                              " message(s) it served" + since;
    if (config_.probation_max_failures > 0 && failures >= config_.probation_max_failures)
        return Trip{"failures", who + " failed " + tally + " (limit " +
                                    std::to_string(config_.probation_max_failures) +
                                    "); latest: " + info.last_failure};
    if (config_.probation_max_failure_ratio > 0 &&
        served_since >= std::max<std::uint64_t>(1, config_.probation_min_messages) &&
        static_cast<double>(failures) >=
            config_.probation_max_failure_ratio * static_cast<double>(served_since))
        return Trip{"failure rate", who + " failed " + tally + "; latest: " + info.last_failure};
    if (info.stuck)
        return Trip{"stuck", who + " has been inside " + info.stuck_in + "() for " +
                                 millis(info.stuck_for) + " (stuck_after " +
                                 millis(config_.stuck_after) + ")"};
    if (auto trip = idle(target.name, served, info.queue_depth, who)) return trip;
    std::lock_guard lock(mutex_);
    auto audit = audits_.find(target.name);
    if (audit != audits_.end() && audit->second.audited && !audit->second.result.healthy &&
        audit->second.at >= release.deadline - release.probation)
        return Trip{"audit", who + " failed its audit: " + audit->second.result.detail};
    return std::nullopt;
}

std::optional<Health::Trip> Health::idle(const std::string& name, std::uint64_t served,
                                         std::size_t queued, const std::string& who) {
    if (queued == 0) {
        progress_.erase(name);
        return std::nullopt;
    }
    const auto now = Clock::now();
    auto [it, fresh] = progress_.try_emplace(name, Progress{served, now});
    if (fresh || it->second.served != served) {
        it->second = Progress{served, now};
        return std::nullopt;
    }
    const auto waited = now - it->second.since;
    if (waited < config_.probation_idle_limit) return std::nullopt;
    progress_.erase(it);
    return Trip{"idle", who + " has had " + std::to_string(queued) +
                            " message(s) queued and served none for " + millis(waited)};
}

// A version stuck, or serving nothing, cannot reach quiescence: it is given up on, and the old
// versions restart from their commit-time checkpoints. Otherwise the newer versions hand their
// state over (down-converted if they offer it); if an older version cannot read it, the
// commit-time checkpoints are used all the same: the rule has judged the newer versions.
void Health::roll_back(const CommittedRelease& release, const Trip& trip) {
    RollbackRequest request;
    request.transaction = release.id;
    request.rule = trip.rule;
    request.evidence = trip.evidence;
    request.only_provisional = true;
    request.force = request.from_checkpoint = trip.rule == "stuck" || trip.rule == "idle";
    auto report = upgrader_.rollback(request);
    if (report.outcome == Outcome::aborted && !request.from_checkpoint) {
        request.from_checkpoint = true;
        report = upgrader_.rollback(request);
    }
    if (report.ok() || report.reason.find("no longer provisional") != std::string::npos) return;
    // Not retried every period: the operator is told once, the reports say why.
    given_up_.insert(release.id);
    publish("alarm", "transaction " + std::to_string(release.id) + " could not be rolled back (" +
                         trip.rule + ": " + trip.evidence + "): " + report.reason);
}

// Looks at every module only when an audit may be due (the earliest due time has come) or the
// number of modules changed, so that between audits a tick costs a comparison, not a look at
// each of 10,000 modules; a module loaded while another is removed waits for that sweep, at
// most one audit_period. The due audits run one after another, each in its module's thread.
void Health::audit_due() {
    const auto now = Clock::now();
    if (now < next_sweep_ && names_.size() == swept_count_) return;
    const auto proxies = names_.proxies();
    std::vector<std::shared_ptr<ModuleProxy>> due;
    auto earliest = Clock::time_point::max();
    {
        std::lock_guard lock(mutex_);
        for (const auto& proxy : proxies) {
            auto& record = audits_[proxy->name()];
            if (now >= record.next) {
                record.next = now + config_.audit_period;
                due.push_back(proxy);
            }
            earliest = std::min(earliest, record.next);
        }
        // Every module has a record now: more records than modules means removed ones.
        if (audits_.size() > proxies.size())
            for (auto it = audits_.begin(); it != audits_.end();)
                it = names_.find(it->first) ? std::next(it) : audits_.erase(it);
    }
    next_sweep_ = earliest;
    swept_count_ = proxies.size();
    for (const auto& proxy : due) {
        const ModuleInfo info = proxy->info();
        if (info.in_transaction || info.stuck) continue;  // the stuck rule speaks for it
        if (auto result = proxy->audit(config_.audit_timeout))
            climb(info.name, info.version, *result);
    }
}

// The escalation ladder (seed 002), one rung per consecutive failed audit: report → restart the
// same version from its last checkpoint → roll back to the previous version → disable the
// module and raise an alarm. A provisional version goes straight to rollback (the "audit"
// health rule). A healthy audit starts the ladder again.
void Health::climb(const std::string& name, const std::string& version, const AuditResult& result) {
    std::uint32_t failures;
    std::string last;
    {
        std::lock_guard lock(mutex_);
        auto& record = audits_[name];
        record.audited = true;
        record.result = result;
        record.time = std::chrono::system_clock::now();
        record.at = Clock::now();
        record.failures = result.healthy ? 0 : record.failures + 1;
        if (result.healthy) record.step.clear();
        failures = record.failures;
        last = record.step;
    }
    if (result.healthy) return;
    const char* step = next_step(name, failures, last);
    set_step(name, step);
    if (std::string(step) == "disabled") return;  // alarmed once; the record shows the rest
    publish("audit", name + " " + version + " " + step + ": " + result.detail);
    const std::string rung = step;
    const std::string evidence = "version " + version + " of module '" + name +
                                 "' failed its audit " + std::to_string(failures) +
                                 " time(s) in a row: " + result.detail;
    if (rung == "restart") {
        upgrader_.restart(name);
    } else if (rung == "rollback" && !upgrader_.ledger().provisional_of(name)) {
        // (A provisional version is rolled back by the "audit" health rule instead.)
        RollbackRequest request;
        request.name = name;
        request.rule = "audit";
        request.evidence = evidence;
        if (upgrader_.rollback(request).ok()) return;
        request.from_checkpoint = true;
        if (upgrader_.rollback(request).ok()) return;
        set_step(name, "disable");
        disable(name, version, evidence);
    } else if (rung == "disable") {
        disable(name, version, evidence);
    }
}

void Health::disable(const std::string& name, const std::string& version,
                     const std::string& evidence) {
    upgrader_.disable(name);
    publish("alarm", name + " " + version + " disabled: " + evidence);
}

const char* Health::next_step(const std::string& name, std::uint32_t failures,
                              const std::string& last) const {
    if (upgrader_.ledger().provisional_of(name)) return "rollback";
    if (last == "disable" || last == "disabled") return "disabled";  // alarmed once
    if (failures <= 1) return "report";
    if (failures == 2) return "restart";
    if (failures == 3 && upgrader_.ledger().last_touching(name)) return "rollback";
    return "disable";
}

void Health::set_step(const std::string& name, const std::string& step) {
    std::lock_guard lock(mutex_);
    audits_[name].step = step;
}

void Health::publish(const char* event, const std::string& payload) {
    if (!events_.has_subscribers("upgrader", event)) return;
    Message m;
    m.payload = payload;
    events_.notify("upgrader", event, m);
}

void Health::describe(ModuleInfo& info) const {
    if (auto release = upgrader_.ledger().provisional_of(info.name)) {
        info.provisional = true;
        info.provisional_transaction = release->id;
        const auto left = release->deadline - Clock::now();
        info.probation_left = std::max(std::chrono::milliseconds{0},
                                       std::chrono::duration_cast<std::chrono::milliseconds>(left));
    }
    std::lock_guard lock(mutex_);
    auto it = audits_.find(info.name);
    if (it == audits_.end() || !it->second.audited) return;
    info.audited = true;
    info.audit_healthy = it->second.result.healthy;
    info.audit_detail = it->second.result.detail;
    info.audit_time = it->second.time;
    info.audit_failures = it->second.failures;
    info.audit_step = it->second.step;
}

}  // namespace nonstop::detail
