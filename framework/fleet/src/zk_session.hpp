// One ZooKeeper session through the C client (zookeeper_mt), as the fleet needs it: synchronous
// operations that throw a one-sentence Error, bounded by the connect timeout; every watch wakes
// the waiters of change(); an expired session is replaced by a new one and the callbacks given
// to on_new_session() run (members re-register).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

struct _zhandle;

namespace nonstop {

class ZkSession {
public:
    /// Connects to `hosts` within `connect_timeout`; throws Error if it cannot.
    ZkSession(std::string hosts, std::chrono::milliseconds session_timeout,
              std::chrono::milliseconds connect_timeout);
    ~ZkSession();
    ZkSession(const ZkSession&) = delete;
    ZkSession& operator=(const ZkSession&) = delete;

    /// The node's data; empty if there is no node. With `watch`, its next change wakes waiters.
    std::optional<std::string> get(const std::string& path, bool watch = false);
    /// Sets the data of an existing node.
    void set(const std::string& path, const std::string& data);
    /// Creates a node (flags: ZOO_EPHEMERAL, ZOO_SEQUENCE); false if it already exists. Returns
    /// the created path in `created`.
    bool create(const std::string& path, const std::string& data, int flags = 0,
                std::string* created = nullptr);
    /// Creates persistent nodes in one atomic operation (ZooKeeper's multi): all or none.
    void create_all(const std::vector<std::pair<std::string, std::string>>& nodes);
    /// Reads several nodes in one round trip (pipelined); empty for a node that does not exist.
    std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& paths,
                                                     bool watch = false);
    /// Creates the persistent node and its parents where missing.
    void ensure(const std::string& path);
    /// The children's names; empty if there is no node.
    std::vector<std::string> children(const std::string& path, bool watch = false);
    bool exists(const std::string& path, bool watch = false);
    /// Removes a node if it exists.
    void remove(const std::string& path);

    /// A counter that moves on every watch event and session change.
    std::uint64_t generation() const;
    /// Waits until generation() differs from `seen`, or until `limit` passed.
    void wait_change(std::uint64_t seen, std::chrono::milliseconds limit);
    /// Wakes every waiter (for changes that come from this process).
    void poke();
    /// Called in the session's own thread after an expired session was replaced.
    void on_new_session(std::function<void()> callback);
    std::uint64_t sessions() const;
    bool connected() const;
    /// The session ended (expired) and no new one is established yet.
    bool expired() const;
    const std::string& hosts() const { return hosts_; }

    /// The C client's callback (public for the C trampoline only).
    void event(int type, int state);

private:
    void open_i();
    void wait_connected();
    void renew();
    int call(const std::string& what, const std::string& path,
             const std::function<int(_zhandle*)>& op, std::initializer_list<int> accepted);

    std::string hosts_;
    std::chrono::milliseconds session_timeout_;
    std::chrono::milliseconds connect_timeout_;
    std::shared_mutex handle_mutex_;  // exclusive only to replace the handle
    _zhandle* zh_ = nullptr;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::uint64_t generation_ = 0;
    int state_ = 0;
    bool expired_ = false;
    bool stopping_ = false;
    std::uint64_t sessions_ = 0;
    std::vector<std::function<void()>> callbacks_;
    std::thread renewer_;
};

}  // namespace nonstop
