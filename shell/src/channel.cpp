#include "channel.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <algorithm>
#include <cerrno>
#include <climits>

namespace nonstop {

Channel::Channel(int fd) : fd_(fd) {
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

Channel::~Channel() {
    if (ssl_) SSL_free(ssl_);
}

std::string Channel::openssl_error() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return "the connection ended during the handshake";
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

// Waits until the socket can be read (or written); false at the deadline.
bool Channel::wait(bool for_write, Deadline deadline) {
    for (;;) {
        int timeout = -1;
        if (deadline != never) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            timeout = static_cast<int>(std::clamp<long long>(left.count(), 0, INT_MAX));
        }
        pollfd p{fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
        const int ready = ::poll(&p, 1, timeout);
        if (ready < 0 && errno == EINTR) continue;
        return ready > 0;  // also on POLLHUP or POLLERR: the next call reports the failure
    }
}

namespace {
// OpenSSL writes to the socket with write(), which raises SIGPIPE when the peer is gone; that
// signal must not end the host. It is blocked in this thread for the call, and taken if raised.
class NoSigpipe {
public:
    NoSigpipe() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~NoSigpipe() {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            const timespec now{0, 0};
            sigtimedwait(&pipe_, nullptr, &now);
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    NoSigpipe(const NoSigpipe&) = delete;
    NoSigpipe& operator=(const NoSigpipe&) = delete;

private:
    sigset_t pipe_, old_;
    bool was_pending_ = false;
};

// Runs one OpenSSL step until it neither wants to read nor to write: 1 done, 0 failed, -1
// timed out.
template <class Step, class Wait>
int drive(SSL* ssl, Step step, Wait wait) {
    for (;;) {
        const int rc = step();
        if (rc > 0) return 1;
        const int error = SSL_get_error(ssl, rc);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            if (!wait(error == SSL_ERROR_WANT_WRITE)) return -1;
            continue;
        }
        return 0;
    }
}
}  // namespace

bool Channel::accept_tls(SSL_CTX* context, Deadline deadline, std::string& why) {
    ssl_ = SSL_new(context);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
        why = "cannot set up TLS: " + openssl_error();
        return false;
    }
    NoSigpipe guard;
    const int rc = drive(
        ssl_, [&] { return SSL_accept(ssl_); }, [&](bool w) { return wait(w, deadline); });
    if (rc == 1) return true;
    why = rc < 0 ? "no TLS handshake within the time limit"
                 : "the TLS handshake failed: " + openssl_error();
    return false;
}

bool Channel::connect_tls(SSL_CTX* context, const std::string& host, Deadline deadline,
                          std::string& why) {
    ssl_ = SSL_new(context);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
        why = "cannot set up TLS: " + openssl_error();
        return false;
    }
    in6_addr ignored{};
    const bool numeric = ::inet_pton(AF_INET, host.c_str(), &ignored) == 1 ||
                         ::inet_pton(AF_INET6, host.c_str(), &ignored) == 1;
    if (!numeric) SSL_set_tlsext_host_name(ssl_, host.c_str());
    // The certificate must name the host the operator asked for (a name or an address).
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (numeric)
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    else
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    NoSigpipe guard;
    const int rc = drive(
        ssl_, [&] { return SSL_connect(ssl_); }, [&](bool w) { return wait(w, deadline); });
    if (rc == 1) return true;
    if (rc < 0) {
        why = "no TLS handshake within the time limit";
    } else if (const long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
        ERR_clear_error();
        why = std::string("the console's certificate is not trusted: ") +
              X509_verify_cert_error_string(v);
    } else {
        why = "the TLS handshake failed: " + openssl_error();
    }
    return false;
}

long Channel::read(char* buffer, std::size_t size, Deadline deadline) {
    const int n = static_cast<int>(std::min<std::size_t>(size, INT_MAX));
    if (!ssl_) {
        for (;;) {
            const ssize_t got = ::recv(fd_, buffer, static_cast<std::size_t>(n), 0);
            if (got >= 0) return got;
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return failed;
            if (!wait(false, deadline)) return timed_out;
        }
    }
    NoSigpipe guard;  // TLS 1.3 may answer a key update while reading
    int got = 0;
    const int rc = drive(
        ssl_,
        [&] {
            got = SSL_read(ssl_, buffer, n);
            return got;
        },
        [&](bool w) { return wait(w, deadline); });
    if (rc == 1) return got;
    if (rc < 0) return timed_out;
    const bool clean = SSL_get_error(ssl_, got) == SSL_ERROR_ZERO_RETURN;
    ERR_clear_error();
    return clean ? end : failed;
}

bool Channel::write_all(const std::string& bytes, Deadline deadline) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const std::size_t chunk = std::min<std::size_t>(bytes.size() - sent, INT_MAX);
        if (ssl_) {
            NoSigpipe guard;
            std::size_t written = 0;
            const int rc = drive(
                ssl_, [&] { return SSL_write_ex(ssl_, bytes.data() + sent, chunk, &written); },
                [&](bool w) { return wait(w, deadline); });
            if (rc != 1) {
                ERR_clear_error();
                return false;
            }
            sent += written;
            continue;
        }
        const ssize_t n = ::send(fd_, bytes.data() + sent, chunk, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait(true, deadline)) return false;
            continue;
        }
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

void Channel::close_write() {
    if (ssl_) {
        NoSigpipe guard;
        SSL_shutdown(ssl_);  // one attempt: a peer that does not read must not hold us
        ERR_clear_error();
    }
    ::shutdown(fd_, SHUT_WR);
}

}  // namespace nonstop
