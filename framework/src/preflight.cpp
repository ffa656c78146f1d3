#include "preflight.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "nonstop/error.hpp"

extern char** environ;

namespace nonstop::detail {

namespace fs = std::filesystem;

namespace {

std::string seconds(std::chrono::milliseconds limit) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", static_cast<double>(limit.count()) / 1000.0);
    return text;
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

bool executable(const std::string& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

// An address inside libnonstop, to find where the library itself was loaded from.
void anchor() {}

// Owns the spawn attributes for the duration of one posix_spawn.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    SpawnSetup(int child_end) {
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_adddup2(&actions, child_end, STDIN_FILENO);
        ::posix_spawn_file_actions_adddup2(&actions, child_end, STDOUT_FILENO);
        // Nothing else of the host's reaches the candidate: no socket, no file, no pipe.
        ::posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
        ::posix_spawnattr_init(&attributes);
        // Its own process group, so that the host can kill whatever the candidate started;
        // no signal blocked or ignored that the host may block or ignore.
        ::posix_spawnattr_setflags(
            &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        ::posix_spawnattr_setpgroup(&attributes, 0);
        sigset_t none, defaults;
        sigemptyset(&none);
        ::posix_spawnattr_setsigmask(&attributes, &none);
        sigemptyset(&defaults);
        for (int sig : {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
                        SIGALRM, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL})
            sigaddset(&defaults, sig);
        ::posix_spawnattr_setsigdefault(&attributes, &defaults);
    }
    ~SpawnSetup() {
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attributes);
    }
};

}  // namespace

std::string Preflight::locate(const Config& config) {
    auto check = [](const std::string& path, const char* where) {
        if (!executable(path))
            throw Error("the preflight program '" + path + "' (" + where +
                        ") is not an executable file");
        return path;
    };
    if (!config.preflight_program.empty())
        return check(config.preflight_program, "Config::preflight_program");
    if (const char* env = std::getenv("NONSTOP_PREFLIGHT"); env && *env)
        return check(env, "NONSTOP_PREFLIGHT");
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&anchor), &info) != 0 && info.dli_fname != nullptr) {
        const fs::path dir = fs::path(info.dli_fname).parent_path();
        // The build tree keeps the program next to the library; an installation in libexec.
        for (const fs::path& candidate :
             {dir / "nonstop-preflight", dir / NONSTOP_PREFLIGHT_FROM_LIBDIR})
            if (executable(candidate.string())) return candidate.lexically_normal().string();
        throw Error("preflight is on but no nonstop-preflight program is next to '" + dir.string() +
                    "' or in '" +
                    (dir / NONSTOP_PREFLIGHT_FROM_LIBDIR).lexically_normal().string() +
                    "' (set NONSTOP_PREFLIGHT or Config::preflight_program)");
    }
    throw Error(
        "preflight is on but the nonstop-preflight program cannot be found (set "
        "NONSTOP_PREFLIGHT or Config::preflight_program)");
}

Preflight::Preflight(const std::string& program, const std::string& copy, const std::string& path,
                     const std::string& name, std::chrono::milliseconds limit)
    : program_(program), path_(path) {
    const auto begin = Clock::now();
    spawn(program, copy, path, name);
    await("ready", limit, begin + limit);
    cost_ = Clock::now() - begin;
}

Preflight::~Preflight() { end(true); }

void Preflight::spawn(const std::string& program, const std::string& copy, const std::string& path,
                      const std::string& name) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
        throw Error(std::string("cannot make a channel to the preflight program: ") +
                    std::strerror(errno));
    SpawnSetup setup(ends[1]);
    std::string args[] = {program, copy, path, name};
    char* argv[] = {args[0].data(), args[1].data(), args[2].data(), args[3].data(), nullptr};
    const int error =
        ::posix_spawn(&pid_, program.c_str(), &setup.actions, &setup.attributes, argv, environ);
    ::close(ends[1]);
    if (error != 0) {
        ::close(ends[0]);
        pid_ = -1;
        throw Error("cannot start the preflight program '" + program +
                    "': " + std::strerror(error));
    }
    fd_ = ends[0];
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    // (glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage: the system call.)
    // -1 on kernels without it: the end of the channel tells then.
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
}

void Preflight::stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);  // in case it could not take its own group
}

// Kills (when asked) and reaps the child once.
void Preflight::end(bool kill) {
    if (pid_ > 0) {
        if (kill) stop();
        int status = 0;
        pid_t got;
        while ((got = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
        }
        if (got == pid_) status_ = status;
        pid_ = -1;
    }
    if (fd_ >= 0) ::close(fd_);
    if (pidfd_ >= 0) ::close(pidfd_);
    fd_ = pidfd_ = -1;
}

// Reads what is there; false once the child's end is closed.
bool Preflight::drain() {
    char chunk[4096];
    for (;;) {
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

// The next line of the child; false when it ended (ended_) or the deadline passed.
bool Preflight::next_line(std::string& line, Clock::time_point deadline) {
    for (;;) {
        if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
            line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return true;
        }
        if (ended_) return false;
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd watch[2] = {{fd_, POLLIN, 0}, {pidfd_, POLLIN, 0}};
        const int n = ::poll(watch, pidfd_ >= 0 ? 2 : 1, static_cast<int>(left));
        if (n < 0 && errno != EINTR) ended_ = true;
        if (n <= 0) continue;
        if (watch[0].revents != 0 && !drain()) ended_ = true;
        // Ended while something it started still holds the channel: what it said is read.
        if (pidfd_ >= 0 && watch[1].revents != 0) {
            drain();
            ended_ = true;
        }
    }
}

bool Preflight::send_all(const std::string& data, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;  // it ended
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd watch{fd_, POLLOUT, 0};
        ::poll(&watch, 1, static_cast<int>(left));
    }
    return true;
}

// Follows the child's lines until `until`; anything else ends in failed().
void Preflight::await(const char* until, std::chrono::milliseconds limit,
                      Clock::time_point deadline) {
    std::string line;
    while (next_line(line, deadline)) {
        if (line == until) return;
        if (line.rfind("stage\t", 0) == 0) {
            stage_ = line.substr(6);
        } else if (line.rfind("loaded\t", 0) == 0) {
            const auto tab = line.find('\t', 7);
            kind_ = line.substr(7, tab == std::string::npos ? tab : tab - 7);
            version_ = tab == std::string::npos ? "" : line.substr(tab + 1);
        } else if (line.rfind("error\t", 0) == 0) {
            const auto tab = line.find('\t', 6);
            const std::string what = tab == std::string::npos ? "" : line.substr(tab + 1);
            end(true);
            if (stage_ == "load" || stage_ == "create")
                throw Error(candidate() + " failed preflight: " + what);
            throw Error(candidate() + " threw " + where() + " during preflight: " + what);
        }
    }
    failed(limit);
}

void Preflight::check_state(const State& state, const std::string& from_version,
                            std::chrono::milliseconds limit) {
    from_version_ = from_version;
    const auto deadline = Clock::now() + limit;
    const std::string request =
        "state " + std::to_string(state.schema) + " " + std::to_string(state.bytes.size()) + "\n";
    stage_ = "get_state";  // what it is busy with if it does not even take the checkpoint
    if (!send_all(request, deadline) || !send_all(state.bytes, deadline)) {
        if (Clock::now() >= deadline) failed(limit);
        ended_ = true;  // the channel broke: it ended
    }
    await("restored", limit, deadline);
}

std::string Preflight::candidate() const {
    std::string out = "candidate " + fs::path(path_).filename().string();
    if (!kind_.empty()) out += " (kind " + kind_ + ", version " + version_ + ")";
    return out;
}

std::string Preflight::where() const {
    if (stage_.empty()) return "while the preflight program started";
    if (stage_ == "load") return "while loading (in a static constructor)";
    if (stage_ == "create") return "in its factory (the module's constructor)";
    if (stage_ == "get_state")
        return "in get_state() on the checkpoint of version " + from_version_;
    return "in " + stage_ + "()";
}

// The child ended or the time is up: one sentence on how, naming the step it was in.
void Preflight::failed(std::chrono::milliseconds limit) {
    const bool hung = !ended_;
    end(true);
    if (hung)
        throw Error(candidate() + " hung " + where() + " during preflight: killed after " +
                    seconds(limit) + " (preflight_timeout)");
    if (stage_.empty())
        throw Error("the preflight program '" + program_ + "' ended before it tried " +
                    candidate() +
                    (WIFEXITED(status_) ? " (exit status " + std::to_string(WEXITSTATUS(status_))
                                        : " (" + signal_name(WTERMSIG(status_))) +
                    ")");
    if (WIFSIGNALED(status_))
        throw Error(candidate() + " crashed with " + signal_name(WTERMSIG(status_)) + " " +
                    where() + " during preflight");
    throw Error(candidate() + " exited with status " + std::to_string(WEXITSTATUS(status_)) + " " +
                where() + " during preflight");
}

}  // namespace nonstop::detail
