// Two instances bounce a message between them; "ping" times every round trip (ping → pong →
// ping, through both proxies) and leaves the figures in the probe for the benchmark to read.
// Start: the host sends type 1 with payload "ROUNDS PEER" to the ping instance.
#include <nonstop/module.hpp>

#include <chrono>
#include <sstream>
#include <vector>

#include "probe.hpp"

namespace {

using Clock = std::chrono::steady_clock;

class PingPong : public nonstop::Module {
public:
    void handle(const nonstop::Message& m) override {
        if (m.type == 1) {  // start, from the host
            std::istringstream in(m.payload);
            in >> rounds_ >> peer_;
            samples_.clear();
            samples_.reserve(static_cast<std::size_t>(rounds_));
            last_ = Clock::now();
            context().send(peer_, nonstop::Message{2, 1, {}, {}});
        } else if (m.type == 2) {  // the ball
            if (rounds_ == 0) {    // pong: straight back
                context().send(m.sender, nonstop::Message{2, 1, {}, {}});
                return;
            }
            const auto now = Clock::now();
            samples_.push_back(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count());
            last_ = now;
            if (static_cast<long>(samples_.size()) < rounds_) {
                context().send(peer_, nonstop::Message{2, 1, {}, {}});
            } else {
                std::ostringstream out;
                for (auto s : samples_) out << s << ' ';
                probe::set(context().name() + ".samples", out.str());
            }
        }
    }

private:
    long rounds_ = 0;
    std::string peer_;
    std::vector<long> samples_;
    Clock::time_point last_;
};

}  // namespace

NONSTOP_MODULE(PingPong, "pingpong", "1")
