// A UDP socket bound on loopback: a monitor node's receiving end.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace nonstop::router {

class UdpReceiver {
public:
    /// Binds 127.0.0.1:port; port 0 picks a free one (see port()). Throws std::runtime_error.
    explicit UdpReceiver(std::uint16_t port);
    ~UdpReceiver();
    UdpReceiver(const UdpReceiver&) = delete;
    UdpReceiver& operator=(const UdpReceiver&) = delete;

    std::uint16_t port() const { return port_; }
    /// The next datagram, or nothing after `timeout` (or an interrupting signal).
    std::optional<std::string> receive(std::chrono::milliseconds timeout);

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace nonstop::router
