#include "monitor_log.hpp"

#include <algorithm>

namespace nonstop::router {

namespace {

long long number_of(const Fields& f, std::string_view key) {
    auto it = f.find(key);
    if (it == f.end()) return -1;
    try {
        return std::stoll(it->second);
    } catch (...) {
        return -1;
    }
}

std::string joined(const std::set<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
    return out.empty() ? "-" : out;
}

}  // namespace

MonitorLog::MonitorLog(std::chrono::milliseconds outage_threshold) : threshold_(outage_threshold) {}

MonitorLog::Observation MonitorLog::record(std::string_view text, Clock::time_point arrival) {
    Observation seen;
    seen.fields = parse_datagram(text);
    const auto& f = seen.fields;
    const std::string kind = f.count("kind") ? f.at("kind") : "";
    std::lock_guard lock(mutex_);
    ++state_.received;
    if (kind == "ICMP" || kind == "HELLO" || kind == "HEARTBEAT") {
        ++state_.packets;
        if (auto v = f.find("version"); v != f.end()) state_.versions.insert(v->second);
        if (any_packet_) {
            const long long silence =
                std::chrono::duration_cast<std::chrono::milliseconds>(arrival - last_packet_)
                    .count();
            state_.longest_silence_ms = std::max(state_.longest_silence_ms, silence);
            if (silence > threshold_.count()) {
                ++state_.outages;
                state_.longest_outage_ms = std::max(state_.longest_outage_ms, silence);
                seen.outage_ms = silence;
            }
        }
        any_packet_ = true;
        last_packet_ = arrival;
    } else if (kind == "RELAY") {
        const long long number = number_of(f, "number");
        auto from = f.find("from");
        if (number < 0 || from == f.end()) {
            ++state_.unparsed;
        } else {
            auto& track = state_.relays[from->second];
            if (track.count == 0) {
                track.first = number;
            } else if (number > track.last + 1) {
                ++track.gaps;
                track.missing += static_cast<std::uint64_t>(number - track.last - 1);
                seen.anomaly = "relay gap from " + from->second + ": expected " +
                               std::to_string(track.last + 1) + ", got " + std::to_string(number);
            } else if (number <= track.last) {
                ++track.repeats;
                seen.anomaly = "relay repeat from " + from->second + ": " + std::to_string(number) +
                               " after " + std::to_string(track.last);
            }
            ++track.count;
            track.last = std::max(track.last, number);
            if (auto v = f.find("version"), p = f.find("protocol"); v != f.end() && p != f.end())
                state_.decoded.insert(v->second + ":" + p->second);
        }
    } else if (kind == "BYE") {
        auto module = f.find("module");
        const long long sent = number_of(f, "relay_sent");
        if (module != f.end() && sent >= 0) state_.relay_sent[module->second] = sent;
    } else if (kind == "END") {
        state_.ended = true;
    } else {
        ++state_.unparsed;
    }
    changed_.notify_all();
    return seen;
}

MonitorLog::Snapshot MonitorLog::snapshot() const {
    std::lock_guard lock(mutex_);
    return state_;
}

bool MonitorLog::wait_until(const std::function<bool(const Snapshot&)>& done,
                            std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return done(state_); });
}

std::string MonitorLog::summary(std::string_view monitor) const {
    const Snapshot s = snapshot();
    std::uint64_t gaps = 0, repeats = 0;
    for (const auto& [source, track] : s.relays) {
        gaps += track.gaps;
        repeats += track.repeats;
    }
    std::string line = "SUMMARY monitor=" + std::string(monitor) +
                       " received=" + std::to_string(s.received) +
                       " packets=" + std::to_string(s.packets) + " versions=" + joined(s.versions) +
                       " longest_silence_ms=" + std::to_string(s.longest_silence_ms) +
                       " outages=" + std::to_string(s.outages) +
                       " longest_outage_ms=" + std::to_string(s.longest_outage_ms) +
                       " gaps=" + std::to_string(gaps) + " repeats=" + std::to_string(repeats) +
                       " unparsed=" + std::to_string(s.unparsed);
    for (const auto& [source, track] : s.relays) {
        const std::string p = " relay_" + source + "_";
        line += p + "first=" + std::to_string(track.first) + p +
                "last=" + std::to_string(track.last) + p + "count=" + std::to_string(track.count) +
                p + "missing=" + std::to_string(track.missing);
    }
    if (!s.decoded.empty()) line += " decoded=" + joined(s.decoded);
    for (const auto& [module, sent] : s.relay_sent)
        line += " sent_" + module + "=" + std::to_string(sent);
    return line;
}

}  // namespace nonstop::router
