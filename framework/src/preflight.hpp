// Preflight (seed 000's validation): a candidate module library is tried in a sandbox child
// process (nonstop-preflight, framework/preflight/) before the host loads it, so that a library
// that crashes, aborts, hangs or throws in its static constructors, its factory, initialize()
// or get_state() is refused with the cause named, and the host never ran any of its code.
//
// The child gets the host's private copy (the very bytes the host would load), the library's
// real path (for its messages) and the module's name. It speaks on its stdin/stdout, one end
// of a socket pair, one line per message:
//   child:  stage STEP          before each step: load, create, initialize, get_state
//           loaded KIND VERSION the library loaded and passed the ABI and factory checks
//           ready               initialize() returned
//           restored            get_state() returned
//           error STEP TEXT     the step threw, or the library cannot be loaded (it then exits)
//   host:   state SCHEMA SIZE   followed by SIZE bytes: run get_state() on that checkpoint
// The end of its input ends the child; the host kills and reaps it in any case.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "nonstop/config.hpp"
#include "nonstop/module.hpp"

namespace nonstop::detail {

class Preflight {
public:
    using Clock = std::chrono::steady_clock;

    /// Starts `program` on `copy` (the host's private copy of the library at `path`) as module
    /// `name`, and waits until the candidate's initialize() has returned, for at most `limit`.
    /// Throws Error naming the candidate and the cause: the signal it died of and the step it
    /// was in, what it threw, or that it hung (it is then killed). The child stays until this
    /// object is destroyed, for check_state().
    Preflight(const std::string& program, const std::string& copy, const std::string& path,
              const std::string& name, std::chrono::milliseconds limit);
    /// Kills the child's process group and reaps the child.
    ~Preflight();
    /// Kills the child's process group without waiting; the destructor reaps it.
    void stop();
    Preflight(const Preflight&) = delete;
    Preflight& operator=(const Preflight&) = delete;

    /// What the library declares, as the child found it.
    const std::string& kind() const { return kind_; }
    const std::string& version() const { return version_; }
    /// From the start of the child to the end of initialize().
    std::chrono::nanoseconds cost() const { return cost_; }

    /// Runs get_state(`state`) in the child (the checkpoint of version `from_version`), for at
    /// most `limit`; throws Error naming the cause as the constructor does.
    void check_state(const State& state, const std::string& from_version,
                     std::chrono::milliseconds limit);

    /// The preflight program: Config::preflight_program, else $NONSTOP_PREFLIGHT, else
    /// nonstop-preflight next to libnonstop, else in the libexec directory of its installation.
    /// Throws Error when there is none.
    static std::string locate(const Config& config);

private:
    void spawn(const std::string& program, const std::string& copy, const std::string& path,
               const std::string& name);
    bool next_line(std::string& line, Clock::time_point deadline);
    bool drain();
    bool send_all(const std::string& data, Clock::time_point deadline);
    void await(const char* until, std::chrono::milliseconds limit, Clock::time_point deadline);
    [[noreturn]] void failed(std::chrono::milliseconds limit);
    void end(bool kill);
    std::string candidate() const;
    std::string where() const;

    std::string program_, path_;
    pid_t pid_ = -1;
    int fd_ = -1;     // the host's end of the child's stdin/stdout
    int pidfd_ = -1;  // readable once the child has ended
    int status_ = 0;
    bool ended_ = false;
    std::string buffer_;
    std::string stage_;
    std::string kind_, version_, from_version_;
    std::chrono::nanoseconds cost_{0};
};

}  // namespace nonstop::detail
