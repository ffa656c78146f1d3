#include "nonstop/remote_console.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <signal.h>
#include <tcl.h>
#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <random>
#include <utility>

#include "channel.hpp"
#include "memory_budget.hpp"
#include "nonstop/error.hpp"
#include "nonstop/issuer.hpp"
#include "nonstop/tcl_commands.hpp"

namespace nonstop {

struct RemoteConsole::Client {
    int fd = -1;
    std::string peer;                  // the address it connects from
    std::string peer_port;             // address:port, for the log
    std::unique_ptr<Channel> channel;  // made and used by the client's thread only
    // The running command's deadline (steady clock ticks), for framework calls it waits for.
    std::atomic<std::chrono::steady_clock::rep> deadline{0};
    std::atomic<bool> authenticated{false};
    bool evicted = false;  // guarded by RemoteConsole::mutex_
    std::thread thread;
    std::atomic<bool> done{false};
    Tcl_Interp* interp = nullptr;  // guarded by RemoteConsole::mutex_; only its thread uses it
};

namespace {

std::uint16_t port_of(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
    if (address.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    return 0;
}

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

std::string status_line(bool ok, std::size_t length, std::string errorcode) {
    std::string head = ok ? "ok " : "error ";
    head += std::to_string(length);
    if (!ok) {
        for (char& c : errorcode)
            if (c == '\n' || c == '\r') c = ' ';
        head += " " + errorcode;
    }
    return head + "\n";
}

// A failed write means the peer went away; the read side notices and ends the session.
void reply(Channel& channel, bool ok, const std::string& body, std::string errorcode = {}) {
    channel.write_all(status_line(ok, body.size(), std::move(errorcode)) + body + "\n");
}

void reply(int fd, bool ok, const std::string& body, std::string errorcode = {}) {
    std::string head = ok ? "ok " : "error ";
    head += std::to_string(body.size());
    if (!ok) {
        for (char& c : errorcode)
            if (c == '\n' || c == '\r') c = ' ';
        head += " " + errorcode;
    }
    const std::string bytes = head + "\n" + body + "\n";
    [[maybe_unused]] auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/// Now in UTC, ISO 8601 with milliseconds.
std::string utc_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char text[96];
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return text;
}

/// A command as one quoted line for the log: at most 200 bytes, control characters escaped.
std::string quoted(const std::string& command) {
    constexpr std::size_t limit = 200;
    std::string out = "\"";
    for (std::size_t i = 0; i < command.size() && i < limit; ++i) {
        const unsigned char c = static_cast<unsigned char>(command[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    if (command.size() > limit) out += "...(" + std::to_string(command.size()) + " bytes)";
    return out;
}

bool loopback(const std::string& address) { return address.rfind("127.", 0) == 0; }

// Set in a session's thread: what to do when Tcl panics there.
thread_local std::function<void(const std::string&)>* session_panic = nullptr;

// Tcl panics (and aborts the process) where it cannot go on: a value past 2 GiB (`$a$a$a...`
// of large values, which no command wrapper sees), an allocation that fails. In a console
// session that ends only the session: its thread exits (its interpreter and values are left
// allocated), the host and every other session go on. Elsewhere Tcl's behaviour is kept.
void panic_in_session(const char* format, ...) {
    char message[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (!session_panic) {
        std::fprintf(stderr, "%s\n", message);
        std::fflush(stderr);
        std::abort();
    }
    (*session_panic)(message);
    ::pthread_exit(nullptr);
}

void init_tcl_once() {
    static std::once_flag once;
    // A host that never used Tcl has not initialised its subsystems. Tcl 8.6 initialises them
    // idempotently and leaves an executable name set earlier alone when given NULL.
    std::call_once(once, [] {
        Tcl_FindExecutable(nullptr);
        Tcl_SetPanicProc(&panic_in_session);
    });
}

}  // namespace

RemoteConsole::RemoteConsole(Runtime& runtime) : RemoteConsole(runtime, Options{}) {}

RemoteConsole::RemoteConsole(Runtime& runtime, Options options)
    : runtime_(runtime), options_(std::move(options)) {}

RemoteConsole::~RemoteConsole() { stop(); }

void RemoteConsole::set_up_tls() {
    const bool certificate = !options_.tls_certificate_file.empty(),
               key = !options_.tls_key_file.empty();
    if (!certificate && !key) {
        if (!loopback(options_.address))
            throw Error("the console may listen on " + options_.address +
                        ", which is not a loopback address, only with TLS (a certificate and a "
                        "key file)");
        return;
    }
    if (!certificate || !key) throw Error("TLS needs both a certificate file and a key file");
    tls_ = SSL_CTX_new(TLS_server_method());
    if (!tls_) throw Error("cannot set up TLS: " + Channel::openssl_error());
    SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
    std::string why;
    if (SSL_CTX_use_certificate_chain_file(tls_, options_.tls_certificate_file.c_str()) != 1)
        why = "cannot use the certificate file '" + options_.tls_certificate_file +
              "': " + Channel::openssl_error();
    else if (SSL_CTX_use_PrivateKey_file(tls_, options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) !=
             1)
        why =
            "cannot use the key file '" + options_.tls_key_file + "': " + Channel::openssl_error();
    else if (SSL_CTX_check_private_key(tls_) != 1)
        why = "the key file '" + options_.tls_key_file + "' does not match the certificate";
    if (!why.empty()) {
        SSL_CTX_free(tls_);
        tls_ = nullptr;
        throw Error(why);
    }
}

void RemoteConsole::start() {
    if (acceptor_.joinable()) throw Error("the console is already running");
    init_tcl_once();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(options_.port);
    if (inet_pton(AF_INET, options_.address.c_str(), &addr.sin_addr) != 1)
        throw Error("'" + options_.address + "' is not an IPv4 address");
    set_up_tls();
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto fail = [this](const std::string& what) {
        const int err = errno;
        if (listen_fd_ >= 0) ::close(listen_fd_);
        listen_fd_ = -1;
        SSL_CTX_free(tls_);
        tls_ = nullptr;
        throw Error(what + ": " + std::strerror(err));
    };
    if (listen_fd_ < 0) fail("cannot create a socket");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
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
            ::close(wake_[0]);
            ::close(wake_[1]);
            wake_[0] = wake_[1] = -1;
            errno = err;
            fail("cannot write the token file '" + path + "'");
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
        // A command waiting for the framework notices the cancellation within 50 ms.
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
    SSL_CTX_free(tls_);
    tls_ = nullptr;
    if (!token_file_.empty()) ::unlink(token_file_.c_str());
}

void RemoteConsole::log(const Client& client, const std::string& what) {
    const std::string line = utc_now() + " console " + client.peer_port + " " + what;
    if (options_.log) {
        try {
            options_.log(line);
        } catch (...) {
            // The host's logger failing must not end a session.
        }
    } else {
        std::fprintf(stderr, "%s\n", line.c_str());
    }
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
        if (!make_room_i()) {
            // Under TLS nothing can be said before the handshake: the connection just closes.
            if (!tls_) reply(fd, false, "too many console connections", "NONSTOP BUSY");
            ::close(fd);
            continue;
        }
        start_session_i(fd, address);
    }
}

// Unauthenticated connections never hold every slot: past their share, the oldest of them makes
// room for the new one (an operator sends the token at once). False when every slot is held.
bool RemoteConsole::make_room_i() {
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
    return held < options_.max_clients;
}

// A session of its own for the connection `fd` from `address`.
void RemoteConsole::start_session_i(int fd, const sockaddr_storage& address) {
    auto client = std::make_unique<Client>();
    client->fd = fd;
    client->peer = peer_of(address);
    client->peer_port = (address.ss_family == AF_INET6 ? "[" + client->peer + "]" : client->peer) +
                        ":" + std::to_string(port_of(address));
    Client& c = *client;
    clients_.push_back(std::move(client));
    c.thread = std::thread([this, &c] {
        // Sessions write to sockets that clients may close: never with SIGPIPE.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        // Also when the thread exits from a Tcl panic (see panic_in_session).
        struct Done {
            RemoteConsole* console;
            Client& client;
            ~Done() {
                {
                    std::lock_guard lock(console->mutex_);
                    client.interp = nullptr;
                }
                client.done = true;
            }
        } done{this, c};
        IssuerScope issuer("console " + c.peer);
        serve(c);
    });
}

// Evaluates one complete command within the session's time limit, replies with its result and
// logs it. False when the interpreter can take no further work (time-limited or cancelled).
bool RemoteConsole::evaluate(Client& client, Tcl_Interp* interp, const std::string& command) {
    const auto began = std::chrono::steady_clock::now();
    client.deadline = (began + options_.command_time_limit).time_since_epoch().count();
    Tcl_Time deadline;
    Tcl_GetTime(&deadline);
    deadline.sec += static_cast<long>(options_.command_time_limit.count());
    Tcl_LimitSetTime(interp, &deadline);
    Tcl_LimitTypeSet(interp, TCL_LIMIT_TIME);
    const int code =
        Tcl_EvalEx(interp, command.data(), static_cast<int>(command.size()), TCL_EVAL_GLOBAL);
    const bool limited = Tcl_LimitExceeded(interp) != 0;
    Tcl_LimitTypeReset(interp, TCL_LIMIT_TIME);
    const std::string result = Tcl_GetStringResult(interp);
    std::string outcome = "ok";
    if (code == TCL_OK) {
        reply(*client.channel, true, result);
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
        reply(*client.channel, false, result, errorcode);
        outcome = "error {" + errorcode.substr(0, 200) + "}";
    } else {
        reply(*client.channel, false,
              "the command ended with break, continue or return outside a procedure",
              "NONSTOP USAGE");
        outcome = "error {NONSTOP USAGE}";
    }
    for (char& c : outcome)
        if (c == '\n' || c == '\r') c = ' ';
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
    char took[32];
    std::snprintf(took, sizeof took, "%.1fms", ms);
    const std::string text = !command.empty() && command.back() == '\n'
                                 ? command.substr(0, command.size() - 1)
                                 : command;
    log(client, "command " + quoted(text) + " " + outcome + " " + took);
    // A cancelled or time-limited interpreter refuses further work; a fresh start is simpler
    // than resetting every limit flag, and only this client's state is lost.
    const bool usable = !limited && Tcl_Canceled(interp, 0) == TCL_OK;
    Tcl_ResetResult(interp);
    return usable;
}

// Reads the next line into `line`; false when the client is gone, sent too long a line, or
// has not sent one by `deadline`.
bool RemoteConsole::read_line(Client& client, std::string& input, std::string& line,
                              bool incomplete, std::chrono::steady_clock::time_point deadline) {
    Channel& channel = *client.channel;
    char chunk[4096];
    for (;;) {
        if (const auto newline = input.find('\n'); newline != std::string::npos) {
            line = input.substr(0, newline);
            input.erase(0, newline + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return true;
        }
        if (input.size() > options_.max_command) {
            reply(channel, false,
                  "the line is longer than " + std::to_string(options_.max_command) + " bytes",
                  "NONSTOP TOO_LONG");
            return false;
        }
        if (stopping_) return false;
        const long n = channel.read(chunk, sizeof chunk, deadline);
        if (n == Channel::timed_out) {
            reply(channel, false, "no token within the time limit", "NONSTOP AUTH");
            log(client, "authentication failed: no token within the time limit");
            return false;
        }
        if (n <= 0) {
            if (incomplete)
                reply(channel, false, "the input ended inside an incomplete command",
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
        reply(*client.channel, true, "authenticated");
        log(client, "authenticated");
        return true;
    }
    unsigned failures;
    {
        std::lock_guard lock(mutex_);
        failures = failures_[client.peer]++;
    }
    log(client, "authentication failed: wrong token (failure " + std::to_string(failures + 1) +
                    " from this address)");
    const auto delay = std::min<std::chrono::milliseconds>(
        options_.failed_token_delay * (1LL << std::min(failures, 16u)), std::chrono::seconds(5));
    std::unique_lock lock(mutex_);
    stop_changed_.wait_for(lock, delay, [&] { return stopping_.load(); });
    lock.unlock();
    reply(*client.channel, false, "wrong token", "NONSTOP AUTH");
    return false;
}

namespace {
/// The session's interpreter: safe, memory-bounded, with the confined ::nonstop commands whose
/// framework calls stop being waited for at the running command's deadline.
Tcl_Interp* session_interp(Runtime& runtime, const RemoteConsole::Options& options,
                           const std::atomic<std::chrono::steady_clock::rep>& deadline) {
    Tcl_Interp* interp = Tcl_CreateInterp();
    Tcl_MakeSafe(interp);
    MemoryBudget::install(interp, options.max_value_bytes, options.memory_budget);
    TclCommands::Policy policy;
    policy.thesis_spellings = true;
    policy.confined = true;
    // A little before the command's own limit, so that the command can still answer (past
    // its limit Tcl cancels the whole session).
    policy.wait_until = [&deadline] {
        return std::chrono::steady_clock::time_point(
                   std::chrono::steady_clock::duration(deadline.load())) -
               std::chrono::milliseconds(100);
    };
    TclCommands::install(interp, runtime, policy);
    return interp;
}
}  // namespace

// The TLS handshake, when the console speaks TLS, within the time allowed to authenticate;
// false, the connection closed and logged, when it fails.
bool RemoteConsole::handshake(Client& client, std::chrono::steady_clock::time_point deadline) {
    if (!tls_) return true;
    std::string why;
    if (client.channel->accept_tls(tls_, deadline, why)) return true;
    log(client, "closed: " + why);
    ::shutdown(client.fd, SHUT_RDWR);
    return false;
}

void RemoteConsole::serve(Client& client) {
    const auto auth_deadline = std::chrono::steady_clock::now() + options_.auth_time_limit;
    client.channel = std::make_unique<Channel>(client.fd);
    log(client, std::string("connected") + (tls_ ? " (TLS)" : ""));
    if (!handshake(client, auth_deadline)) return;
    std::function<void(const std::string&)> on_panic = [this, &client](const std::string& why) {
        reply(*client.channel, false,
              "the command made Tcl give up (" + why + "); this session ends, the host goes on",
              "NONSTOP PANIC");
        log(client, "closed: Tcl panicked: " + why);
        client.channel->close_write();
        ::shutdown(client.fd, SHUT_RDWR);
    };
    session_panic = &on_panic;
    // The interpreter is created, used and deleted in this thread only (Tcl's rule).
    Tcl_Interp* interp = session_interp(runtime_, options_, client.deadline);
    {
        std::lock_guard lock(mutex_);
        client.interp = interp;
    }
    std::string input, pending, line;
    const auto no_deadline = std::chrono::steady_clock::time_point::max();
    while (!stopping_ && read_line(client, input, line, client.authenticated && !pending.empty(),
                                   client.authenticated ? no_deadline : auth_deadline)) {
        if (!client.authenticated) {
            if (!authenticate(client, line)) break;
            continue;
        }
        if (line.find('\0') != std::string::npos) {
            pending.clear();
            reply(*client.channel, false, "the command contains a NUL byte", "NONSTOP GARBAGE");
            continue;
        }
        pending += line + '\n';
        if (pending.size() > options_.max_command) {
            reply(*client.channel, false,
                  "the command is longer than " + std::to_string(options_.max_command) + " bytes",
                  "NONSTOP TOO_LONG");
            break;
        }
        if (!Tcl_CommandComplete(pending.c_str())) continue;
        if (!evaluate(client, interp, std::exchange(pending, {}))) break;
    }
    {
        std::lock_guard lock(mutex_);
        client.interp = nullptr;
    }
    Tcl_DeleteInterp(interp);
    session_panic = nullptr;
    client.channel->close_write();
    ::shutdown(client.fd, SHUT_RDWR);
    log(client, "closed");
    Tcl_FinalizeThread();
}

}  // namespace nonstop
