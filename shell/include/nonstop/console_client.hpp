// The client side of the RemoteConsole line protocol (see remote_console.hpp), used by
// `nonstop-shell --connect` and by tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

struct ssl_ctx_st;

namespace nonstop {

class Channel;

class ConsoleClient {
public:
    struct Reply {
        bool ok = false;
        std::string errorcode;  // a Tcl list, empty when ok
        std::string body;       // the result, or the error message
    };

    struct TlsOptions {
        /// PEM file of the certificate authority (or the console's self-signed certificate) that
        /// the console's certificate must chain to, naming the host connected to. Empty: the
        /// certificate is not verified (the traffic is encrypted, the console not identified).
        std::string ca_file;
    };

    ConsoleClient();
    /// Closes the connection.
    ~ConsoleClient();
    ConsoleClient(const ConsoleClient&) = delete;
    ConsoleClient& operator=(const ConsoleClient&) = delete;

    /// Connects to host:port; throws nonstop::Error with a one-sentence reason.
    void connect(const std::string& host, std::uint16_t port);
    /// Connects to host:port and speaks TLS; throws nonstop::Error with a one-sentence reason
    /// (also when the certificate is not trusted).
    void connect_tls(const std::string& host, std::uint16_t port, const TlsOptions& tls);
    /// Sends the token and returns the server's verdict.
    Reply authenticate(const std::string& token);
    /// Sends one complete command (a trailing newline is added) and waits for its reply;
    /// throws nonstop::Error when the connection breaks.
    Reply execute(const std::string& command);
    /// Sends raw bytes as they are (tests use this for malformed input).
    void send_raw(const std::string& bytes);
    /// Reads one reply; throws nonstop::Error when the server closed the connection.
    Reply read_reply();
    /// True once the server has closed the connection (reads to end of stream).
    bool closed_by_peer();
    void close();
    /// The socket, for tests that need to half-close it.
    int fd_for_test() const { return fd_; }

private:
    bool fill();
    int fd_ = -1;
    std::unique_ptr<Channel> channel_;
    ssl_ctx_st* tls_ = nullptr;
    std::string buffer_;
};

}  // namespace nonstop
