// SIMT_ASAN: 1 when this file is compiled with AddressSanitizer (gcc's or clang's way of saying
// so), with ASan's interface then included: the emulator tells ASan of its fiber switches and
// poisons the padding of device allocations.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#ifndef SIMT_ASAN
#define SIMT_ASAN 0
#endif

#if SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
