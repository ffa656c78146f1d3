// The child side of preflight: loads the host's private copy of a candidate library, creates
// an instance and runs initialize() in a module task whose host accepts and discards every
// send, notify and registration; then tries checkpoints with get_state() on request. Each step
// is announced before it runs, so that the host can name the step a crash ended.
#include "preflight_child.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "module_task.hpp"
#include "version_repository.hpp"

namespace nonstop::detail {
namespace {

// Sends are accepted and go nowhere; nothing of the candidate reaches another module.
class DiscardingHost final : public ModuleHost {
public:
    bool send(std::string_view, Message&&) override { return true; }
    void publish(const std::string&, const std::string&) override {}
    void subscribe(const std::string&, const std::string&, const std::string&) override {}
    void unsubscribe(const std::string&, const std::string&, const std::string&) override {}
    std::size_t notify(const std::string&, std::string_view, const Message&) override { return 0; }
    void set_timer(const std::string&, std::chrono::milliseconds) override {}
    bool tracing() const override { return false; }
    void trace(std::uint64_t, const std::string&, const std::string&, Step) override {}
};

// One line per field set; a field never holds the separators.
std::string field(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    return s;
}

class Channel {
public:
    Channel(int in, int out) : in_(in), out_(out) {}
    void say(const std::string& line) {
        const std::string text = line + "\n";
        std::size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = ::write(out_, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) ::_exit(4);  // the host is gone
            done += static_cast<std::size_t>(n);
        }
    }
    void fail(const char* stage, const std::string& what) {
        say(std::string("error\t") + stage + "\t" + field(what));
    }
    // False at the end of input (the host has what it wanted).
    bool line(std::string& out) {
        out.clear();
        char c;
        while (read(&c, 1)) {
            if (c == '\n') return true;
            out += c;
        }
        return false;
    }
    bool read(char* to, std::size_t size) {
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::read(in_, to + done, size - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            done += static_cast<std::size_t>(n);
        }
        return true;
    }

private:
    int in_, out_;
};

// "state SCHEMA SIZE" followed by SIZE bytes: get_state() on them.
int serve_requests(Channel& channel, ModuleTask& task) {
    std::string request;
    while (channel.line(request)) {
        unsigned long schema = 0;
        unsigned long long size = 0;
        if (std::sscanf(request.c_str(), "state %lu %llu", &schema, &size) != 2) return 2;
        State state;
        state.schema = static_cast<std::uint32_t>(schema);
        state.bytes.resize(size);
        if (!channel.read(state.bytes.data(), state.bytes.size())) return 2;
        channel.say("stage\tget_state");
        const std::string error = task.try_state(state);
        if (error.empty())
            channel.say("restored");
        else
            channel.fail("get_state", error);
    }
    return 0;
}

int run(const std::string& copy, const std::string& path, const std::string& name) {
    // The protocol keeps its own descriptor; what the candidate prints goes to stderr.
    const int out = ::dup(STDOUT_FILENO);
    if (out < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return 2;
    Channel channel(STDIN_FILENO, out);
    channel.say("stage\tload");
    std::shared_ptr<Library> library;
    try {
        library = VersionRepository::load_in_place(copy, path);
    } catch (const std::exception& e) {
        channel.fail("load", e.what());
        return 3;
    }
    channel.say("loaded\t" + field(library->kind()) + "\t" + field(library->version()));
    DiscardingHost host;
    ServiceCounters counters;
    channel.say("stage\tcreate");
    std::unique_ptr<ModuleTask> task;
    try {
        task = std::make_unique<ModuleTask>(host, name, library, counters);
    } catch (const std::exception& e) {
        channel.fail("create", e.what());
        return 3;
    }
    channel.say("stage\tinitialize");
    task->launch(0);
    try {
        task->wait_initialized(std::chrono::hours(24));  // the host keeps the time
    } catch (const std::exception& e) {
        // The module task's sentence names the module; the host names the candidate.
        std::string what = e.what();
        const std::string prefix = "module '" + name + "' failed to initialize: ";
        if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
        channel.fail("initialize", what);
        return 3;
    }
    channel.say("ready");
    const int status = serve_requests(channel, *task);
    // Nothing of the candidate runs after this point: no terminate(), no destructors.
    std::fflush(nullptr);
    ::_exit(status);
}

}  // namespace
}  // namespace nonstop::detail

extern "C" int nonstop_preflight_main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr,
                     "usage: nonstop-preflight COPY PATH NAME\n"
                     "(started by a nonstop host to try a module library before loading it)\n");
        return 2;
    }
    // The child never outlives its host.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    return nonstop::detail::run(argv[1], argv[2], argv[3]);
}
