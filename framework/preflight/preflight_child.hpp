// The preflight child's entry point. It lives in libnonstop, next to the module task and the
// library loader it uses, so that a candidate runs in the child exactly as it would in the
// host; the nonstop-preflight program only calls it. Not part of the host API.
#pragma once

#include "nonstop/export.hpp"

/// Runs the preflight of one candidate library (usage: COPY PATH NAME) and speaks the protocol
/// of framework/src/preflight.hpp on stdin/stdout; returns the process's exit status.
extern "C" NONSTOP_API int nonstop_preflight_main(int argc, char** argv);
