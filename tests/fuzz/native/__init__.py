"""The C fuzz target (the interpreter, built with clang's libFuzzer and sanitizers)."""
