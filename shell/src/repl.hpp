// The interactive prompt of nonstop-shell, local or --connect: line editing, persistent history
// and completion through Debian's tclreadline when it loads (a plain prompt otherwise), and
// results printed readably (ValueFormatter). Batches and piped input never come here.
#pragma once

#include <string>

#include <tcl.h>

namespace nonstop {

class ConsoleClient;

class Repl {
public:
    /// Reads, evaluates and prints until end of input or `exit`, then calls Tcl_Exit (which
    /// unloads every module): in `interp` itself when `client` is null, otherwise each complete
    /// command goes to the host and `interp` only runs the prompt. `prompt` is shown before
    /// each command.
    static void run(Tcl_Interp* interp, ConsoleClient* client, const std::string& prompt);

    /// The history file: $NONSTOP_SHELL_HISTORY, else ~/.nonstop_history (none without HOME).
    static std::string history_file();

    /// Commands kept in the history file.
    static constexpr int history_length = 1000;
};

}  // namespace nonstop
