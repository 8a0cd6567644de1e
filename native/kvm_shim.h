/*
 * Thin, non-variadic C helpers under kvmpy's KVM binding.
 *
 * cffi cannot call variadic ioctl() efficiently or safely, and a few things (the vCPU kick
 * signal handler, the C baseline loop for the exit benchmark) must not involve Python at all.
 * Every function returns a non-negative result or -errno, never sets errno for the caller.
 */
#ifndef KVMPY_KVM_SHIM_H
#define KVMPY_KVM_SHIM_H

#include <stdint.h>
#include <linux/kvm.h>

/* ioctl with a pointer argument; returns the ioctl result or -errno. */
int kvmpy_ioctl_ptr(int fd, unsigned long request, void *arg);
/* ioctl with an integer argument; returns the ioctl result or -errno. */
int kvmpy_ioctl_int(int fd, unsigned long request, unsigned long arg);
/* KVM_RUN; the GIL is released around this call by cffi. Returns 0 or -errno. */
int kvmpy_kvm_run(int vcpu_fd);

/* Installs a do-nothing handler for `signum` without SA_RESTART, so a signal sent to a vCPU
 * thread makes a blocking KVM_RUN return -EINTR instead of running Python code. */
int kvmpy_install_kick_handler(int signum);

/* Re-enter KVM_RUN for as long as the guest exits with port I/O on `port`, answering INs
 * with zero; counts those exits in *count. Returns the first other exit reason (>= 0) or
 * -errno. This is the C baseline the Python exit path is benchmarked against. */
int kvmpy_run_port_loop(int vcpu_fd, struct kvm_run *run, uint16_t port, uint64_t *count);

/* The ring3_loop/ring0_loop guests' countdown (`dec; jnz`) run on the host: the baseline
 * guest compute is compared with. */
void kvmpy_host_countdown(uint64_t iterations);
void kvmpy_host_x87_loop(uint64_t iterations);
void kvmpy_host_avx2_loop(uint64_t iterations);

/* The host's time-stamp counter: the interpreter's guest TSC is this plus an offset. */
uint64_t kvmpy_rdtsc(void);

/* Nanoseconds from CLOCK_MONOTONIC; for benchmarks that time C and Python on one clock. */
uint64_t kvmpy_monotonic_ns(void);

#endif
