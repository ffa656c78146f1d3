// A module that changes what a thread carries and does not put it back, as module code may:
// its signal mask and alternate signal stack, name, scheduling policy, affinity,
// floating-point rounding, locale and cancellation state. Its initialize() reports what it
// found first (NAME.found) and its thread (NAME.tid). A module whose name starts with 'k' also
// leaves thread-specific data whose destructor is in this library, and reports that
// destructor's run (NAME.key_destroyed); one whose name starts with 'x' leaves a cancellation
// of its thread pending (requested while it had cancellation disabled).
#include <fenv.h>
#include <locale.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <nonstop/module.hpp>

#include <string>

#include "probe.hpp"

namespace {

locale_t own_locale = nullptr;
alignas(16) char own_stack[1 << 16];
pthread_key_t key;
pthread_once_t key_once = PTHREAD_ONCE_INIT;

// Runs when the thread that set the key ends: this library must still be mapped then.
void destroy(void* name) {
    auto* owner = static_cast<std::string*>(name);
    probe::set(*owner + ".key_destroyed", std::to_string(::gettid()));
    delete owner;
}

void make_key() { pthread_key_create(&key, &destroy); }

std::string found() {
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    char name[16] = {};
    prctl(PR_GET_NAME, name);
    int cancel = 0;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
    pthread_setcancelstate(cancel, nullptr);
    stack_t alternate{};
    sigaltstack(nullptr, &alternate);
    cpu_set_t cpus;
    sched_getaffinity(0, sizeof cpus, &cpus);
    return std::string("usr2 ") + (sigismember(&mask, SIGUSR2) ? "blocked" : "open") + ", name " +
           name + ", rounding " + (fegetround() == FE_UPWARD ? "upward" : "other") + ", locale " +
           (uselocale(nullptr) == LC_GLOBAL_LOCALE ? "global" : "own") + ", cancel " +
           (cancel == PTHREAD_CANCEL_ENABLE ? "enabled" : "disabled") + ", policy " +
           (sched_getscheduler(0) == SCHED_BATCH ? "batch" : "other") + ", cpus " +
           std::to_string(CPU_COUNT(&cpus)) + ", alternate stack " +
           (alternate.ss_sp == own_stack ? "own" : "other");
}

// Keeps the thread on the first of its CPUs.
void pin() {
    cpu_set_t cpus;
    sched_getaffinity(0, sizeof cpus, &cpus);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &cpus)) continue;
        CPU_ZERO(&cpus);
        CPU_SET(cpu, &cpus);
        sched_setaffinity(0, sizeof cpus, &cpus);
        return;
    }
}

class ThreadState : public nonstop::Module {
public:
    void initialize() override {
        const std::string name = context().name();
        probe::set(name + ".found", found());
        probe::set(name + ".tid", std::to_string(::gettid()));
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
        prctl(PR_SET_NAME, "changed");
        fesetround(FE_UPWARD);
        if (own_locale == nullptr) own_locale = newlocale(LC_ALL_MASK, "C", nullptr);
        uselocale(own_locale);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
        const sched_param normal{};
        sched_setscheduler(0, SCHED_BATCH, &normal);  // unprivileged, and back again
        pin();
        stack_t alternate{};
        alternate.ss_sp = own_stack;
        alternate.ss_size = sizeof own_stack;
        sigaltstack(&alternate, nullptr);  // in this library: unmapped once it is unloaded
        if (name.front() == 'x') pthread_cancel(pthread_self());
        if (name.front() == 'k') {
            pthread_once(&key_once, &make_key);
            pthread_setspecific(key, new std::string(name));
        }
    }
    void handle(const nonstop::Message&) override {}
};

// The library's end: no thread uses the locale any more.
struct FreeLocale {
    ~FreeLocale() {
        if (own_locale != nullptr) freelocale(own_locale);
    }
} free_locale;

}  // namespace

NONSTOP_MODULE(ThreadState, "thread_state", "1")
