// The data of the fleet's znodes: "key=value" lines, a key may repeat (readable with zkCli.sh).
// Plus the small helpers the member and the coordinator share.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nonstop {

class Record {
public:
    static Record parse(const std::string& text);
    std::string text() const;
    /// The first value of `key`; empty if absent.
    std::string get(const std::string& key) const;
    std::vector<std::string> all(const std::string& key) const;
    /// Replaces every value of `key` with one.
    Record& set(const std::string& key, const std::string& value);
    Record& add(const std::string& key, const std::string& value);

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

/// Where a cluster's nodes are.
struct FleetPaths {
    explicit FleetPaths(const std::string& cluster)
        : root("/nonstop/" + cluster), members(root + "/members"), plans(root + "/plans") {}
    std::string root, members, plans;
    std::string member(const std::string& id) const { return members + "/" + id; }
    std::string plan(const std::string& id) const { return plans + "/" + id; }
    std::string slot(const std::string& plan_id, const std::string& member_id) const {
        return plans + "/" + plan_id + "/m/" + member_id;
    }
};

/// The SHA-256 of a file's content in hexadecimal; throws Error naming the file if unreadable.
std::string file_sha256(const std::string& path);
/// Milliseconds since the epoch (plans record wall-clock times: they outlive processes).
std::int64_t now_ms();
/// Splits on spaces: "a b c" → {a, b, c}; the last field takes the rest of the line.
std::vector<std::string> fields(const std::string& line, std::size_t count);

}  // namespace nonstop
