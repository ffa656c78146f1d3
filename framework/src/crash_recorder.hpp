// The crash black box: a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) in a module's
// thread appends a record naming the module, its version, the signal and a backtrace to
// crash.log in the state directory, async-signal-safely, then the signal takes its default
// action (the process dies as it would have). The next start imports the records into the
// release store. Signals in other threads go to whatever handler was there before.
// Under AddressSanitizer or ThreadSanitizer, which install their own handlers and reports,
// nothing is installed.
#pragma once

#include <string>
#include <vector>

#include "nonstop/store_records.hpp"

namespace nonstop::detail {

class CrashRecorder {
public:
    /// Opens `dir`/crash.log (append, no symbolic link followed) and installs the handlers,
    /// once per process: the first state directory wins. Throws Error when the file cannot be
    /// opened.
    static void install(const std::string& dir);
    /// False when handlers cannot be installed in this build (sanitizers).
    static bool available();
    /// Names the module whose code the calling thread runs (name and version are copied).
    static void enter_module(const std::string& name, const std::string& version);
    static void leave_module();
    /// Reads the records in `dir`/crash.log; `take` empties the file afterwards.
    static std::vector<CrashRecord> read(const std::string& dir);
    static void clear(const std::string& dir);
};

}  // namespace nonstop::detail
