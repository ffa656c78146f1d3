#include "zk_session.hpp"

#include <zookeeper/zookeeper.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "nonstop/error.hpp"

namespace nonstop {

namespace {

void trampoline(zhandle_t*, int type, int state, const char*, void* context) {
    static_cast<ZkSession*>(context)->event(type, state);
}

std::string describe(int rc) { return zerror(rc); }

}  // namespace

ZkSession::ZkSession(std::string hosts, std::chrono::milliseconds session_timeout,
                     std::chrono::milliseconds connect_timeout)
    : hosts_(std::move(hosts)),
      session_timeout_(session_timeout),
      connect_timeout_(connect_timeout) {
    // The C client logs every refused connection attempt to stderr; NONSTOP_ZK_LOG=1..4 shows
    // its log at that level.
    const char* level = std::getenv("NONSTOP_ZK_LOG");
    zoo_set_debug_level(static_cast<ZooLogLevel>(level ? std::atoi(level) : 0));
    {
        std::unique_lock lock(handle_mutex_);
        open_i();
    }
    try {
        wait_connected();
    } catch (...) {
        zookeeper_close(zh_);
        throw;
    }
    renewer_ = std::thread([this] { renew(); });
}

ZkSession::~ZkSession() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    std::unique_lock lock(handle_mutex_);
    if (zh_) zookeeper_close(zh_);
}

void ZkSession::open_i() {
    {
        std::lock_guard lock(mutex_);
        state_ = 0;
        expired_ = false;
        ++sessions_;
    }
    zh_ = zookeeper_init(hosts_.c_str(), trampoline, static_cast<int>(session_timeout_.count()),
                         nullptr, this, 0);
    if (!zh_) throw Error("cannot start a ZooKeeper client for '" + hosts_ + "'");
}

void ZkSession::event(int type, int state) {
    {
        std::lock_guard lock(mutex_);
        ++generation_;
        if (type == ZOO_SESSION_EVENT) {
            state_ = state;
            if (state == ZOO_EXPIRED_SESSION_STATE) expired_ = true;
        }
    }
    changed_.notify_all();
}

void ZkSession::wait_connected() {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(
            lock, connect_timeout_,
            [&] { return state_ == ZOO_CONNECTED_STATE || expired_ || stopping_; }) ||
        state_ != ZOO_CONNECTED_STATE)
        throw Error("ZooKeeper at '" + hosts_ + "' did not answer within " +
                    std::to_string(connect_timeout_.count()) + " ms");
}

// The session's own thread: an expired session cannot come back (its ephemeral nodes are gone),
// so a new one replaces it and whoever registered something registers it again.
void ZkSession::renew() {
    for (;;) {
        std::vector<std::function<void()>> callbacks;
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return expired_ || stopping_; });
            if (stopping_) return;
        }
        {
            std::unique_lock lock(handle_mutex_);
            zookeeper_close(zh_);
            zh_ = nullptr;
            try {
                open_i();
            } catch (const Error& e) {
                std::fprintf(stderr, "nonstop fleet: %s\n", e.what());
            }
        }
        try {
            wait_connected();
        } catch (const Error&) {
            continue;  // the client keeps trying; a later expiry comes back here
        }
        {
            std::lock_guard lock(mutex_);
            callbacks = callbacks_;
        }
        for (auto& c : callbacks) c();
        poke();
    }
}

int ZkSession::call(const std::string& what, const std::string& path,
                    const std::function<int(zhandle_t*)>& op, std::initializer_list<int> accepted) {
    const auto deadline = std::chrono::steady_clock::now() + connect_timeout_;
    for (;;) {
        int rc;
        {
            std::shared_lock lock(handle_mutex_);
            rc = zh_ ? op(zh_) : ZINVALIDSTATE;
        }
        if (rc == ZOK) return rc;
        for (int a : accepted)
            if (rc == a) return rc;
        const bool transient = rc == ZCONNECTIONLOSS || rc == ZSESSIONEXPIRED ||
                               rc == ZINVALIDSTATE || rc == ZOPERATIONTIMEOUT;
        if (!transient || std::chrono::steady_clock::now() >= deadline)
            throw Error("ZooKeeper at '" + hosts_ + "' refused to " + what + " '" + path +
                        "': " + describe(rc));
        // Disconnected or between sessions: wait for the client to come back, within the limit.
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, std::chrono::milliseconds(50),
                          [&] { return state_ == ZOO_CONNECTED_STATE || stopping_; });
        if (stopping_) throw Error("the fleet's ZooKeeper session is closing");
    }
}

std::optional<std::string> ZkSession::get(const std::string& path, bool watch) {
    std::string data(64 * 1024, '\0');
    for (;;) {
        Stat stat{};
        int length = static_cast<int>(data.size());
        const int rc =
            call("read", path,
                 [&](zhandle_t* zh) {
                     return zoo_get(zh, path.c_str(), watch ? 1 : 0, data.data(), &length, &stat);
                 },
                 {ZNONODE});
        if (rc == ZNONODE) return std::nullopt;
        if (stat.dataLength > static_cast<int>(data.size())) {
            data.resize(static_cast<std::size_t>(stat.dataLength));
            continue;
        }
        data.resize(length < 0 ? 0 : static_cast<std::size_t>(length));
        return data;
    }
}

void ZkSession::set(const std::string& path, const std::string& data) {
    call("write", path,
         [&](zhandle_t* zh) {
             return zoo_set(zh, path.c_str(), data.data(), static_cast<int>(data.size()), -1);
         },
         {});
}

bool ZkSession::create(const std::string& path, const std::string& data, int flags,
                       std::string* created) {
    std::string buffer(path.size() + 64, '\0');
    const int rc =
        call("create", path,
             [&](zhandle_t* zh) {
                 return zoo_create(zh, path.c_str(), data.data(), static_cast<int>(data.size()),
                                   &ZOO_OPEN_ACL_UNSAFE, flags, buffer.data(),
                                   static_cast<int>(buffer.size()));
             },
             {ZNODEEXISTS});
    if (rc == ZNODEEXISTS) return false;
    if (created) *created = buffer.c_str();
    return true;
}

void ZkSession::create_all(const std::vector<std::pair<std::string, std::string>>& nodes) {
    std::vector<zoo_op_t> ops(nodes.size());
    std::vector<zoo_op_result_t> results(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i)
        zoo_create_op_init(&ops[i], nodes[i].first.c_str(), nodes[i].second.data(),
                           static_cast<int>(nodes[i].second.size()), &ZOO_OPEN_ACL_UNSAFE, 0,
                           nullptr, 0);
    call("create", nodes.empty() ? std::string() : nodes.front().first,
         [&](zhandle_t* zh) {
             return zoo_multi(zh, static_cast<int>(ops.size()), ops.data(), results.data());
         },
         {});
}

namespace {

// One pipelined read: the completions fill it on the client's completion thread.
struct Reads {
    std::mutex mutex;
    std::condition_variable done;
    std::size_t left = 0;
    bool failed = false;
    std::vector<std::optional<std::string>> out;
};

struct Read {
    std::shared_ptr<Reads> reads;
    std::size_t index;
};

void read_done(int rc, const char* value, int length, const Stat*, const void* data) {
    std::unique_ptr<Read> read(static_cast<Read*>(const_cast<void*>(data)));
    auto& r = *read->reads;
    std::lock_guard lock(r.mutex);
    if (rc == ZOK)
        r.out[read->index] = std::string(value ? value : "", value && length > 0 ? length : 0);
    else if (rc != ZNONODE)
        r.failed = true;
    if (--r.left == 0) r.done.notify_all();
}

}  // namespace

std::vector<std::optional<std::string>> ZkSession::get_many(const std::vector<std::string>& paths,
                                                            bool watch) {
    auto reads = std::make_shared<Reads>();
    reads->out.resize(paths.size());
    reads->left = paths.size();
    {
        std::shared_lock lock(handle_mutex_);
        for (std::size_t i = 0; i < paths.size(); ++i) {
            auto* read = new Read{reads, i};
            const int rc = zh_ ? zoo_aget(zh_, paths[i].c_str(), watch ? 1 : 0, read_done, read)
                               : ZINVALIDSTATE;
            if (rc != ZOK) {  // not submitted: no completion will come
                delete read;
                std::lock_guard r(reads->mutex);
                reads->failed = true;
                --reads->left;
            }
        }
    }
    bool complete;
    {
        std::unique_lock lock(reads->mutex);
        complete = reads->done.wait_for(lock, connect_timeout_, [&] { return reads->left == 0; });
        if (complete && !reads->failed) return reads->out;
    }
    // Disconnected meanwhile: one at a time, each waiting for the connection within the limit.
    std::vector<std::optional<std::string>> out;
    for (const auto& p : paths) out.push_back(get(p, watch));
    return out;
}

void ZkSession::ensure(const std::string& path) {
    for (std::size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
        const std::string prefix = path.substr(0, at);
        if (!exists(prefix)) create(prefix, "");
        if (at == std::string::npos) return;
    }
}

std::vector<std::string> ZkSession::children(const std::string& path, bool watch) {
    String_vector names{};
    const int rc = call(
        "list", path,
        [&](zhandle_t* zh) { return zoo_get_children(zh, path.c_str(), watch ? 1 : 0, &names); },
        {ZNONODE});
    std::vector<std::string> out;
    if (rc == ZNONODE) return out;
    for (int i = 0; i < names.count; ++i) out.emplace_back(names.data[i]);
    deallocate_String_vector(&names);
    return out;
}

bool ZkSession::exists(const std::string& path, bool watch) {
    Stat stat{};
    const int rc =
        call("look up", path,
             [&](zhandle_t* zh) { return zoo_exists(zh, path.c_str(), watch ? 1 : 0, &stat); },
             {ZNONODE});
    return rc == ZOK;
}

void ZkSession::remove(const std::string& path) {
    call("remove", path, [&](zhandle_t* zh) { return zoo_delete(zh, path.c_str(), -1); },
         {ZNONODE});
}

std::uint64_t ZkSession::generation() const {
    std::lock_guard lock(mutex_);
    return generation_;
}

void ZkSession::wait_change(std::uint64_t seen, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, limit, [&] { return generation_ != seen || stopping_; });
}

void ZkSession::poke() {
    {
        std::lock_guard lock(mutex_);
        ++generation_;
    }
    changed_.notify_all();
}

void ZkSession::on_new_session(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    callbacks_.push_back(std::move(callback));
}

std::uint64_t ZkSession::sessions() const {
    std::lock_guard lock(mutex_);
    return sessions_;
}

bool ZkSession::expired() const {
    std::lock_guard lock(mutex_);
    return expired_;
}

bool ZkSession::connected() const {
    std::lock_guard lock(mutex_);
    return state_ == ZOO_CONNECTED_STATE;
}

}  // namespace nonstop
