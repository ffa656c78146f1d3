// A host administered from outside: a runtime with a remote console on a loopback port chosen
// by the system. It prints "console PORT TOKEN_FILE", serves until SIGTERM or SIGINT, then
// prints the modules the operator left loaded ("modules at stop: NAME ...") and removes them.
#include <nonstop/remote_console.hpp>
#include <nonstop/runtime.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: console_host TOKEN_FILE\n");
        return 2;
    }
    // Blocked before any thread starts, so that only sigwait() below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    nonstop::Config config;
    config.module_path = {MODULE_DIR};
    nonstop::Runtime runtime(config);
    nonstop::RemoteConsole::Options options;
    options.token_file = argv[1];
    nonstop::RemoteConsole console(runtime, options);
    try {
        console.start();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "console_host: %s\n", e.what());
        return 1;
    }
    std::printf("console %u %s\n", console.port(), console.token_file().c_str());
    std::fflush(stdout);

    int signal = 0;
    sigwait(&stop_signals, &signal);
    console.stop();
    std::string names;
    for (const auto& m : runtime.modules()) names += " " + m.name;
    std::printf("modules at stop:%s\n", names.c_str());
    return 0;
}
