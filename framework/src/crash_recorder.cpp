#include "crash_recorder.hpp"

#include <execinfo.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "nonstop/error.hpp"

namespace nonstop::detail {

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr std::size_t kSignalCount = sizeof kSignals / sizeof kSignals[0];
struct sigaction previous[kSignalCount];
std::atomic<int> log_fd{-1};
std::atomic_flag writing = ATOMIC_FLAG_INIT;
std::mutex install_mutex;
std::string installed_dir;

// Set by the module task for its thread, read by the handler. Initial-exec so that reading it
// inside a signal handler never allocates (a dynamic TLS block may be made on first use), and
// two pointers only, since libnonstop may itself be dlopen'ed (the Tcl package) and then takes
// this from the small static TLS reserve. The strings belong to the module task, which
// outlives its thread.
struct Identity {
    const std::string* module;
    const std::string* version;
};
[[gnu::tls_model("initial-exec")]] thread_local Identity identity{nullptr, nullptr};

const char* signal_name(int sig) {
    switch (sig) {
        case SIGSEGV: return "SIGSEGV";
        case SIGBUS: return "SIGBUS";
        case SIGILL: return "SIGILL";
        case SIGFPE: return "SIGFPE";
        case SIGABRT: return "SIGABRT";
        default: return "SIG?";
    }
}

// Async-signal-safe output: write(2) only, numbers formatted by hand.
void put(int fd, const char* s, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<std::size_t>(w);
    }
}
void put(int fd, const char* s) { put(fd, s, std::strlen(s)); }
void put_number(int fd, long long v) {
    char buf[24];
    int i = sizeof buf;
    const bool negative = v < 0;
    unsigned long long u = negative ? 0ULL - static_cast<unsigned long long>(v) : v;
    do {
        buf[--i] = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u != 0 && i > 1);
    if (negative) buf[--i] = '-';
    put(fd, buf + i, sizeof buf - static_cast<std::size_t>(i));
}

void write_record(int fd, int sig) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    put(fd, "=== nonstop crash\npid ");
    put_number(fd, ::getpid());
    put(fd, "\ntime_ms ");
    put_number(fd, static_cast<long long>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000);
    put(fd, "\nmodule ");
    put(fd, identity.module->data(), identity.module->size());
    put(fd, "\nversion ");
    put(fd, identity.version->data(), identity.version->size());
    put(fd, "\nsignal ");
    put_number(fd, sig);
    put(fd, " ");
    put(fd, signal_name(sig));
    put(fd, "\nbacktrace\n");
    void* frames[64];
    const int n = ::backtrace(frames, 64);
    ::backtrace_symbols_fd(frames, n, fd);
    put(fd, "=== end\n");
    ::fsync(fd);
}

void on_fatal(int sig, siginfo_t* info, void* context) {
    std::size_t i = 0;
    while (i < kSignalCount && kSignals[i] != sig) ++i;
    const int fd = log_fd.load(std::memory_order_acquire);
    if (identity.module != nullptr && fd >= 0 && !writing.test_and_set()) {
        write_record(fd, sig);
        // The default action, as if no handler had been there: the process dies of `sig`.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, nullptr);
        ::raise(sig);
        return;  // a fault re-executes the faulting instruction and dies of it
    }
    // Not a module's thread: whatever was installed before us handles it.
    const struct sigaction& old = previous[i < kSignalCount ? i : 0];
    if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != nullptr) {
        old.sa_sigaction(sig, info, context);
        return;
    }
    if (old.sa_handler == SIG_IGN) return;
    if (old.sa_handler != SIG_DFL && old.sa_handler != nullptr) {
        old.sa_handler(sig);
        return;
    }
    ::sigaction(sig, &old, nullptr);
    ::raise(sig);
}

std::string log_path(const std::string& dir) {
    return (std::filesystem::path(dir) / "crash.log").string();
}

}  // namespace

bool CrashRecorder::available() { return !kSanitized; }

void CrashRecorder::install(const std::string& dir) {
    std::lock_guard lock(install_mutex);
    if (!installed_dir.empty()) return;
    const std::string path = log_path(dir);
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) throw Error("cannot open the crash log '" + path + "': " + std::strerror(errno));
    installed_dir = dir;
    log_fd.store(fd, std::memory_order_release);
    if (kSanitized) return;  // the sanitizer's own handlers report the crash
    // The first backtrace() loads libgcc_s, which must not happen inside the handler.
    void* frames[2];
    ::backtrace(frames, 2);
    struct sigaction action {};
    action.sa_sigaction = &on_fatal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < kSignalCount; ++i) ::sigaction(kSignals[i], &action, &previous[i]);
}

void CrashRecorder::enter_module(const std::string& name, const std::string& version) {
    identity.version = &version;
    identity.module = &name;
}

void CrashRecorder::leave_module() {
    identity.module = nullptr;
    identity.version = nullptr;
}

std::vector<CrashRecord> CrashRecorder::read(const std::string& dir) {
    std::ifstream in(log_path(dir));
    std::vector<CrashRecord> out;
    std::string line;
    CrashRecord* r = nullptr;
    bool in_backtrace = false;
    while (std::getline(in, line)) {
        if (line == "=== nonstop crash") {
            out.emplace_back();
            r = &out.back();
            in_backtrace = false;
            continue;
        }
        if (r == nullptr) continue;
        if (line == "=== end") {
            r = nullptr;
            continue;
        }
        if (in_backtrace) {
            r->backtrace += line + "\n";
            continue;
        }
        const auto space = line.find(' ');
        const std::string key = line.substr(0, space);
        const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
        if (key == "pid") r->pid = std::atoll(value.c_str());
        if (key == "time_ms")
            r->time = std::chrono::system_clock::time_point(
                std::chrono::milliseconds(std::atoll(value.c_str())));
        if (key == "module") r->module = value;
        if (key == "version") r->version = value;
        if (key == "signal") {
            std::istringstream v(value);
            v >> r->signal >> r->signal_name;
        }
        if (key == "backtrace") in_backtrace = true;
    }
    return out;
}

void CrashRecorder::clear(const std::string& dir) {
    const int fd = ::open(log_path(dir).c_str(), O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
}

}  // namespace nonstop::detail
