#include "nonstop/remote_console.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tcl.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

#include "nonstop/error.hpp"
#include "nonstop/issuer.hpp"
#include "nonstop/tcl_commands.hpp"

namespace nonstop {

struct RemoteConsole::Client {
    int fd = -1;
    std::string peer;  // the address it connects from
    std::atomic<bool> authenticated{false};
    bool evicted = false;  // guarded by RemoteConsole::mutex_
    std::thread thread;
    std::atomic<bool> done{false};
    Tcl_Interp* interp = nullptr;  // guarded by RemoteConsole::mutex_; only its thread uses it
};

namespace {

std::string peer_of(const sockaddr_storage& address) {
    char text[INET6_ADDRSTRLEN] = "";
    if (address.ss_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text,
                    sizeof text);
    else if (address.ss_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text,
                    sizeof text);
    return text;
}

std::string generate_token() {
    std::random_device random;
    static const char hex[] = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 32; ++i) token += hex[random() & 0xf];
    return token;
}

bool equal_constant_time(const std::string& a, const std::string& b) {
    // Every byte is compared so that timing does not reveal how much of a guess was right.
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
    return diff == 0 && !b.empty();
}

void send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the peer went away; the read side notices and ends the session
        sent += static_cast<std::size_t>(n);
    }
}

void reply(int fd, bool ok, const std::string& body, std::string errorcode = {}) {
    std::string head = ok ? "ok " : "error ";
    head += std::to_string(body.size());
    if (!ok) {
        for (char& c : errorcode)
            if (c == '\n' || c == '\r') c = ' ';
        head += " " + errorcode;
    }
    send_all(fd, head + "\n" + body + "\n");
}

void init_tcl_once() {
    static std::once_flag once;
    // A host that never used Tcl has not initialised its subsystems. Tcl 8.6 initialises them
    // idempotently and leaves an executable name set earlier alone when given NULL.
    std::call_once(once, [] { Tcl_FindExecutable(nullptr); });
}

}  // namespace

RemoteConsole::RemoteConsole(Runtime& runtime) : RemoteConsole(runtime, Options{}) {}

RemoteConsole::RemoteConsole(Runtime& runtime, Options options)
    : runtime_(runtime), options_(std::move(options)) {}

RemoteConsole::~RemoteConsole() { stop(); }

void RemoteConsole::start() {
    if (acceptor_.joinable()) throw Error("the console is already running");
    init_tcl_once();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(options_.port);
    if (inet_pton(AF_INET, options_.address.c_str(), &addr.sin_addr) != 1)
        throw Error("'" + options_.address + "' is not an IPv4 address");
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw Error(std::string("cannot create a socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    auto fail = [this](const std::string& what) {
        const int err = errno;
        ::close(listen_fd_);
        listen_fd_ = -1;
        throw Error(what + ": " + std::strerror(err));
    };
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        fail("cannot bind " + options_.address + ":" + std::to_string(options_.port));
    if (::listen(listen_fd_, 16) != 0) fail("cannot listen");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (::pipe2(wake_, O_CLOEXEC) != 0) fail("cannot create a pipe");

    token_ = options_.token;
    token_file_.clear();
    if (token_.empty()) {
        token_ = generate_token();
        std::string path = options_.token_file;
        if (path.empty()) {
            const char* dir = std::getenv("XDG_RUNTIME_DIR");
            path = std::string(dir && *dir ? dir : "/tmp") + "/nonstop-console-" +
                   std::to_string(::getpid()) + "-" + std::to_string(port_) + ".token";
        }
        ::unlink(path.c_str());  // O_EXCL below must not be defeated by an existing file or link
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            const int err = errno;
            ::close(listen_fd_);
            ::close(wake_[0]);
            ::close(wake_[1]);
            listen_fd_ = wake_[0] = wake_[1] = -1;
            throw Error("cannot write the token file '" + path + "': " + std::strerror(err));
        }
        ::fchmod(fd, 0600);
        const std::string line = token_ + "\n";
        [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
        ::close(fd);
        token_file_ = path;
    }
    stopping_ = false;
    acceptor_ = std::thread([this] { accept_loop(); });
}

void RemoteConsole::stop() {
    if (!acceptor_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_changed_.notify_all();
    [[maybe_unused]] auto n = ::write(wake_[1], "x", 1);
    acceptor_.join();
    {
        std::lock_guard lock(mutex_);
        for (auto& c : clients_) {
            ::shutdown(c->fd, SHUT_RDWR);
            if (c->interp) Tcl_CancelEval(c->interp, nullptr, nullptr, TCL_CANCEL_UNWIND);
        }
    }
    reap(true);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    listen_fd_ = wake_[0] = wake_[1] = -1;
    if (!token_file_.empty()) ::unlink(token_file_.c_str());
}

void RemoteConsole::reap(bool all) {
    std::list<std::unique_ptr<Client>> finished;
    {
        std::lock_guard lock(mutex_);
        for (auto it = clients_.begin(); it != clients_.end();) {
            if (all || (*it)->done) {
                finished.push_back(std::move(*it));
                it = clients_.erase(it);
            } else {
                ++it;
            }
        }
    }
    // Joined outside the lock: a finishing client thread takes it to clear its interpreter.
    for (auto& c : finished) {
        if (c->thread.joinable()) c->thread.join();
        ::close(c->fd);
    }
}

void RemoteConsole::accept_loop() {
    while (!stopping_) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (stopping_ || (fds[1].revents & POLLIN)) return;
        if (!(fds[0].revents & POLLIN)) continue;
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        const int fd =
            ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC);
        if (fd < 0) continue;
        reap(false);
        std::lock_guard lock(mutex_);
        // Unauthenticated connections never hold every slot: past their share, the oldest
        // of them makes room for the new one (an operator sends the token at once).
        std::size_t held = 0, waiting = 0;
        Client* oldest_waiting = nullptr;
        for (const auto& c : clients_) {
            if (c->done || c->evicted) continue;
            ++held;
            if (c->authenticated) continue;
            ++waiting;
            if (!oldest_waiting) oldest_waiting = c.get();
        }
        if (oldest_waiting &&
            (waiting >= options_.max_unauthenticated || held >= options_.max_clients)) {
            oldest_waiting->evicted = true;
            ::shutdown(oldest_waiting->fd, SHUT_RDWR);
            --held;
        }
        if (held >= options_.max_clients) {
            reply(fd, false, "too many console connections", "NONSTOP BUSY");
            ::close(fd);
            continue;
        }
        auto client = std::make_unique<Client>();
        client->fd = fd;
        client->peer = peer_of(address);
        Client& c = *client;
        clients_.push_back(std::move(client));
        c.thread = std::thread([this, &c] {
            IssuerScope issuer("console " + c.peer);
            serve(c);
            c.done = true;
        });
    }
}

namespace {
/// Evaluates one complete command within the session's time limit and replies with its result.
/// False when the interpreter can take no further work (time-limited or cancelled).
bool evaluate(int fd, Tcl_Interp* interp, const std::string& command, std::chrono::seconds limit) {
    Tcl_Time deadline;
    Tcl_GetTime(&deadline);
    deadline.sec += static_cast<long>(limit.count());
    Tcl_LimitSetTime(interp, &deadline);
    Tcl_LimitTypeSet(interp, TCL_LIMIT_TIME);
    const int code =
        Tcl_EvalEx(interp, command.data(), static_cast<int>(command.size()), TCL_EVAL_GLOBAL);
    const bool limited = Tcl_LimitExceeded(interp) != 0;
    Tcl_LimitTypeReset(interp, TCL_LIMIT_TIME);
    const std::string result = Tcl_GetStringResult(interp);
    if (code == TCL_OK) {
        reply(fd, true, result);
    } else if (code == TCL_ERROR) {
        Tcl_Obj* options = Tcl_GetReturnOptions(interp, code);
        Tcl_IncrRefCount(options);
        Tcl_Obj* key = Tcl_NewStringObj("-errorcode", -1);
        Tcl_IncrRefCount(key);
        Tcl_Obj* ec = nullptr;
        Tcl_DictObjGet(nullptr, options, key, &ec);
        const std::string errorcode = ec ? Tcl_GetString(ec) : "NONE";
        Tcl_DecrRefCount(key);
        Tcl_DecrRefCount(options);
        reply(fd, false, result, errorcode);
    } else {
        reply(fd, false, "the command ended with break, continue or return outside a procedure",
              "NONSTOP USAGE");
    }
    // A cancelled or time-limited interpreter refuses further work; a fresh start is simpler
    // than resetting every limit flag, and only this client's state is lost.
    const bool usable = !limited && Tcl_Canceled(interp, 0) == TCL_OK;
    Tcl_ResetResult(interp);
    return usable;
}
}  // namespace

// Reads the next line into `line`; false when the client is gone, sent too long a line, or
// has not sent one by `deadline`.
bool RemoteConsole::read_line(int fd, std::string& input, std::string& line, bool incomplete,
                              std::chrono::steady_clock::time_point deadline) {
    char chunk[4096];
    for (;;) {
        if (const auto newline = input.find('\n'); newline != std::string::npos) {
            line = input.substr(0, newline);
            input.erase(0, newline + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return true;
        }
        if (input.size() > options_.max_command) {
            reply(fd, false,
                  "the line is longer than " + std::to_string(options_.max_command) + " bytes",
                  "NONSTOP TOO_LONG");
            return false;
        }
        if (stopping_) return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1,
                                 static_cast<int>(std::clamp<long long>(
                                     left.count(), 0, std::numeric_limits<int>::max())));
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) {
            reply(fd, false, "no token within the time limit", "NONSTOP AUTH");
            return false;
        }
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (incomplete)
                reply(fd, false, "the input ended inside an incomplete command",
                      "NONSTOP INCOMPLETE");
            return false;
        }
        input.append(chunk, static_cast<std::size_t>(n));
    }
}

// Checks the first line against the token; a wrong one is answered after the peer's delay.
bool RemoteConsole::authenticate(Client& client, const std::string& line) {
    if (equal_constant_time(line, token_)) {
        {
            std::lock_guard lock(mutex_);
            failures_.erase(client.peer);
        }
        client.authenticated = true;
        reply(client.fd, true, "authenticated");
        return true;
    }
    unsigned failures;
    {
        std::lock_guard lock(mutex_);
        failures = failures_[client.peer]++;
    }
    const auto delay = std::min<std::chrono::milliseconds>(
        options_.failed_token_delay * (1LL << std::min(failures, 16u)), std::chrono::seconds(5));
    std::unique_lock lock(mutex_);
    stop_changed_.wait_for(lock, delay, [&] { return stopping_.load(); });
    lock.unlock();
    reply(client.fd, false, "wrong token", "NONSTOP AUTH");
    return false;
}

void RemoteConsole::serve(Client& client) {
    const int fd = client.fd;
    // The interpreter is created, used and deleted in this thread only (Tcl's rule).
    Tcl_Interp* interp = Tcl_CreateInterp();
    Tcl_MakeSafe(interp);
    TclCommands::Policy policy;
    policy.thesis_spellings = true;
    policy.confined = true;
    TclCommands::install(interp, runtime_, policy);
    {
        std::lock_guard lock(mutex_);
        client.interp = interp;
    }
    std::string input, pending, line;
    const auto auth_deadline = std::chrono::steady_clock::now() + options_.auth_time_limit;
    const auto no_deadline = std::chrono::steady_clock::time_point::max();
    while (!stopping_ && read_line(fd, input, line, client.authenticated && !pending.empty(),
                                   client.authenticated ? no_deadline : auth_deadline)) {
        if (!client.authenticated) {
            if (!authenticate(client, line)) break;
            continue;
        }
        if (line.find('\0') != std::string::npos) {
            pending.clear();
            reply(fd, false, "the command contains a NUL byte", "NONSTOP GARBAGE");
            continue;
        }
        pending += line + '\n';
        if (pending.size() > options_.max_command) {
            reply(fd, false,
                  "the command is longer than " + std::to_string(options_.max_command) + " bytes",
                  "NONSTOP TOO_LONG");
            break;
        }
        if (!Tcl_CommandComplete(pending.c_str())) continue;
        const bool usable =
            evaluate(fd, interp, std::exchange(pending, {}), options_.command_time_limit);
        if (!usable) break;
    }
    {
        std::lock_guard lock(mutex_);
        client.interp = nullptr;
    }
    Tcl_DeleteInterp(interp);
    ::shutdown(fd, SHUT_RDWR);
    Tcl_FinalizeThread();
}

}  // namespace nonstop
