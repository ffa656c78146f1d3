// Every time limit and size of the runtime, with its default, in one place.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace nonstop {

struct Config {
    /// How long a target may take to reach quiescence during a transaction (SetTimer).
    std::chrono::milliseconds quiescence_timeout{5000};
    /// Messages one module's input queue (or its swap buffer) holds before senders block.
    /// Blocking, not dropping: the thesis's queuing model (4.5) sizes this at Σλ·T.
    std::size_t queue_capacity = 1'000'000;
    /// Transaction reports kept for `history`.
    std::size_t history_size = 256;
    /// Upper bound on waiting for the first buffered message to be served after a swap, when
    /// the report's blackout figure is measured.
    std::chrono::milliseconds blackout_probe_limit{1000};
    /// Directories searched, in order, for a library named without a '/'.
    std::vector<std::string> module_path;
};

}  // namespace nonstop
