// One console connection's bytes, plain or over TLS (OpenSSL), with every wait bounded by a
// deadline: the remote console and ConsoleClient both speak through it. The socket is put in
// non-blocking mode; a wait ends at the deadline, or when another thread shuts the socket down.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace nonstop {

class Channel {
public:
    using Deadline = std::chrono::steady_clock::time_point;
    static constexpr Deadline never = Deadline::max();

    /// Uses `fd` (not owned: the caller closes it after this is destroyed).
    explicit Channel(int fd);
    ~Channel();
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    /// Server side of a TLS handshake; false with a one-sentence reason in `why`.
    bool accept_tls(SSL_CTX* context, Deadline deadline, std::string& why);
    /// Client side; `host` is checked against the certificate when the context verifies.
    bool connect_tls(SSL_CTX* context, const std::string& host, Deadline deadline,
                     std::string& why);
    bool tls() const { return ssl_ != nullptr; }

    enum : long { end = 0, failed = -1, timed_out = -2 };
    /// Reads up to `size` bytes: their count, `end` at end of stream, `failed` or `timed_out`.
    long read(char* buffer, std::size_t size, Deadline deadline);
    /// Writes every byte; false when the peer is gone.
    bool write_all(const std::string& bytes, Deadline deadline = never);
    /// Ends the sending side (TLS close_notify, then the socket's write half).
    void close_write();

    /// The reason OpenSSL gave for the last failure, one line.
    static std::string openssl_error();

private:
    bool wait(bool for_write, Deadline deadline);
    int fd_;
    SSL* ssl_ = nullptr;
};

}  // namespace nonstop
