// nonstop-preflight: the sandbox child in which a host tries a candidate module library before
// it loads it (see framework/src/preflight.hpp). Started by the host, never by hand.
#include "preflight_child.hpp"

// Under a sanitizer, a fault in the candidate must still end the child by its signal, so that
// the host can name it: the sanitizer's own handlers would turn it into an exit status.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() {
    return "handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigfpe=0:handle_sigill=0";
}
#endif
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_options() {
    return "handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigfpe=0:handle_sigill=0";
}
#endif

int main(int argc, char** argv) { return nonstop_preflight_main(argc, argv); }
