#include "nonstop/console_client.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "channel.hpp"
#include "nonstop/error.hpp"

namespace nonstop {

ConsoleClient::ConsoleClient() = default;

ConsoleClient::~ConsoleClient() {
    close();
    SSL_CTX_free(tls_);
}

void ConsoleClient::close() {
    channel_.reset();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
}

void ConsoleClient::connect_tls(const std::string& host, std::uint16_t port,
                                const TlsOptions& tls) {
    SSL_CTX_free(tls_);
    tls_ = SSL_CTX_new(TLS_client_method());
    if (!tls_) throw Error("cannot set up TLS: " + Channel::openssl_error());
    SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
    if (!tls.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(tls_, tls.ca_file.c_str(), nullptr) != 1)
            throw Error("cannot read the certificate authority file '" + tls.ca_file +
                        "': " + Channel::openssl_error());
        SSL_CTX_set_verify(tls_, SSL_VERIFY_PEER, nullptr);
    }
    connect(host, port);
    std::string why;
    if (!channel_->connect_tls(tls_, host, Channel::never, why)) {
        close();
        throw Error("cannot speak TLS with " + host + ":" + std::to_string(port) + ": " + why);
    }
}

void ConsoleClient::connect(const std::string& host, std::uint16_t port) {
    close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
        throw Error("cannot resolve '" + host + "': " + gai_strerror(rc));
    int err = 0;
    for (addrinfo* a = found; a && fd_ < 0; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            fd_ = fd;
        } else {
            err = errno;
            ::close(fd);
        }
    }
    ::freeaddrinfo(found);
    if (fd_ < 0)
        throw Error("cannot connect to " + host + ":" + service + ": " + std::strerror(err));
    channel_ = std::make_unique<Channel>(fd_);
}

void ConsoleClient::send_raw(const std::string& bytes) {
    if (fd_ < 0) throw Error("the console is not connected");
    if (!channel_->write_all(bytes)) throw Error("the console closed the connection");
}

bool ConsoleClient::fill() {
    char chunk[4096];
    const long n = channel_->read(chunk, sizeof chunk, Channel::never);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
}

ConsoleClient::Reply ConsoleClient::read_reply() {
    if (fd_ < 0) throw Error("the console is not connected");
    std::size_t newline;
    while ((newline = buffer_.find('\n')) == std::string::npos)
        if (!fill()) throw Error("the console closed the connection");
    std::istringstream head(buffer_.substr(0, newline));
    std::string status;
    std::size_t length = 0;
    head >> status >> length;
    if ((status != "ok" && status != "error") || !head)
        throw Error("the console sent a malformed reply");
    Reply r;
    r.ok = status == "ok";
    std::getline(head >> std::ws, r.errorcode);
    buffer_.erase(0, newline + 1);
    while (buffer_.size() < length + 1)
        if (!fill()) throw Error("the console closed the connection");
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length + 1);
    return r;
}

ConsoleClient::Reply ConsoleClient::authenticate(const std::string& token) {
    send_raw(token + "\n");
    return read_reply();
}

ConsoleClient::Reply ConsoleClient::execute(const std::string& command) {
    send_raw(command + "\n");
    return read_reply();
}

bool ConsoleClient::closed_by_peer() {
    if (fd_ < 0) return true;
    while (fill()) {
    }
    return true;
}

}  // namespace nonstop
