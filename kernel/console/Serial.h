#pragma once
// 16550 UART on COM1: the kernel's first and most reliable console, and the test harness's channel.
#include <ktl/Types.h>

namespace serial {

void init();
bool is_present();
void write_char(char c);
void write(const char* text, usize length);
// Non-blocking read: returns -1 when no byte is waiting.
int read_char();

} // namespace serial
