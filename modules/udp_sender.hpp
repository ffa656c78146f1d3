// A connected UDP socket to one monitor on loopback: the router's "network interface".
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "router_protocol.hpp"

namespace nonstop::router {

class UdpSender {
public:
    UdpSender() = default;
    UdpSender(const UdpSender&) = delete;
    UdpSender& operator=(const UdpSender&) = delete;
    ~UdpSender() { close(); }

    /// Connects to kMonitorHost:port. Throws, so that a module fails to initialize rather
    /// than run without its monitor link.
    void open(std::uint16_t port) {
        close();
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("cannot create a UDP socket");
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        ::inet_pton(AF_INET, kMonitorHost, &to.sin_addr);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
            close();
            throw std::runtime_error("cannot address the monitor on port " + std::to_string(port));
        }
    }

    /// Best effort, like the packets it stands for: a monitor that is not listening (ICMP port
    /// unreachable) must not disturb the router.
    void send(std::string_view text) {
        if (fd_ >= 0) (void)::send(fd_, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }

    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

}  // namespace nonstop::router
