// A Tcl console on a TCP port for a host that embeds the runtime.
//
// Line protocol (bytes, '\n'-terminated lines; a trailing '\r' is ignored):
//   1. The client's first line is the token. The server answers with a reply (below): "ok"
//      when it matches, otherwise an error {NONSTOP AUTH} and the connection is closed. No
//      command is evaluated before this.
//   2. Every following line is appended to a pending command; once the pending text is a
//      complete Tcl command (Tcl_CommandComplete) it is evaluated and answered with one reply.
//      A command may therefore span lines (an open brace continues it).
//   3. A reply is a status line and a body:
//          ok <length>\n<length bytes of result>\n
//          error <length> <errorcode as a Tcl list>\n<length bytes of message>\n
//      The errorcode has its newlines replaced by spaces so that the status is one line.
//   4. A line or pending command longer than Options::max_command bytes is answered with
//      {NONSTOP TOO_LONG} and the connection is closed (there is no way to find the next
//      command boundary). A NUL byte is answered with {NONSTOP GARBAGE} and the pending text
//      is dropped. End of input inside an incomplete command is answered with
//      {NONSTOP INCOMPLETE} before closing.
// Commands run in a safe Tcl interpreter (Tcl_MakeSafe: no exec, open, file, source, load,
// socket, cd, exit, interp...) holding the ::nonstop ensemble and the thesis spellings, confined:
// a library must lie in a directory of the module path and the module path is read-only. Each
// connection gets its own interpreter in its own thread. A command that runs longer than
// Options::command_time_limit is cancelled (and the connection closed); a framework call it
// waits for (a transaction, a send into a full queue) stops being waited for at that limit with
// {NONSTOP TIMEOUT} and goes on in the background, its report in `nonstop history`. Values are
// kept within Options::max_value_bytes and the session's variables within
// Options::memory_budget ({NONSTOP MEMORY}), so that no command can make Tcl abort the host.
//
// Transport: plain TCP on loopback; any other address needs TLS (Options::tls_certificate_file
// and tls_key_file, PEM), under which the whole protocol runs, the handshake bounded by
// auth_time_limit. Every connection, authentication, command (with its outcome and duration)
// and close is logged through Options::log.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct ssl_ctx_st;
struct Tcl_Interp;
struct sockaddr_storage;

namespace nonstop {

class Runtime;

class RemoteConsole {
public:
    struct Options {
        std::string address = "127.0.0.1";
        std::uint16_t port = 0;  // 0: the system picks one; read it with port() after start()
        /// Empty: a random token is generated and written to token_file.
        std::string token;
        /// Where a generated token is written (mode 0600). Empty:
        /// $XDG_RUNTIME_DIR (or /tmp)/nonstop-console-<pid>-<port>.token.
        std::string token_file;
        std::size_t max_command = 64 * 1024;
        std::size_t max_clients = 8;
        /// Connections that have not sent the right token yet hold at most this many of the
        /// max_clients slots (past it the oldest of them is closed for the newcomer), so an
        /// operator with the token always gets in; each is closed when it has not
        /// authenticated within auth_time_limit.
        std::size_t max_unauthenticated = 4;
        std::chrono::seconds auth_time_limit{5};
        /// A wrong token is answered only after a delay that doubles with each failure from
        /// the same peer address (from this, up to 5 s); a right one resets it.
        std::chrono::milliseconds failed_token_delay{100};
        std::chrono::seconds command_time_limit{60};
        /// The largest value (string, list...) one command may build.
        std::size_t max_value_bytes = std::size_t{64} << 20;
        /// The most that one session's variables (global, namespace, locals) may hold together.
        std::size_t memory_budget = std::size_t{256} << 20;
        /// PEM files of the console's certificate (chain) and private key. Both set: every
        /// connection speaks TLS. Required for an address other than loopback.
        std::string tls_certificate_file;
        std::string tls_key_file;
        /// Receives one line per event (UTC time, peer address:port, what happened); empty:
        /// the lines go to stderr. Called from the console's threads, one line at a time.
        std::function<void(const std::string& line)> log;
    };

    explicit RemoteConsole(Runtime& runtime);
    RemoteConsole(Runtime& runtime, Options options);
    /// Stops the console if it is running.
    ~RemoteConsole();
    RemoteConsole(const RemoteConsole&) = delete;
    RemoteConsole& operator=(const RemoteConsole&) = delete;

    /// Binds, writes the token file if needed and starts the acceptor thread; throws
    /// nonstop::Error with a one-sentence reason (also for an address other than loopback
    /// without TLS, and for a certificate or key that cannot be used).
    void start();
    /// Closes the listening socket and every connection, cancels running scripts, joins every
    /// thread and removes a generated token file; returns promptly even while a command waits
    /// inside the framework (that call goes on in the background: a host destroys its Runtime
    /// after TclCommands::wait_for_background()). Idempotent.
    void stop();
    /// The bound port (valid after start()).
    std::uint16_t port() const { return port_; }
    /// The token clients must send first.
    const std::string& token() const { return token_; }
    /// The file holding a generated token; empty when the host gave the token.
    const std::string& token_file() const { return token_file_; }

private:
    struct Client;
    void accept_loop();
    bool make_room_i();
    void start_session_i(int fd, const sockaddr_storage& address);
    void serve(Client& client);
    bool handshake(Client& client, std::chrono::steady_clock::time_point deadline);
    bool read_line(Client& client, std::string& input, std::string& line, bool incomplete,
                   std::chrono::steady_clock::time_point deadline);
    bool authenticate(Client& client, const std::string& line);
    bool evaluate(Client& client, Tcl_Interp* interp, const std::string& command);
    void reap(bool all);
    void log(const Client& client, const std::string& what);
    void set_up_tls();

    Runtime& runtime_;
    Options options_;
    std::string token_, token_file_;
    std::uint16_t port_ = 0;
    int listen_fd_ = -1;
    ssl_ctx_st* tls_ = nullptr;  // set when the console speaks TLS
    int wake_[2] = {-1, -1};
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::map<std::string, unsigned> failures_;  // wrong tokens per peer address
    std::condition_variable stop_changed_;      // ends a wrong token's delay at stop()
    std::list<std::unique_ptr<Client>> clients_;
};

}  // namespace nonstop
