/* See kvm_shim.h for what each helper is for. */
#define _GNU_SOURCE
#include "kvm_shim.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

int kvmpy_ioctl_ptr(int fd, unsigned long request, void *arg)
{
	int ret = ioctl(fd, request, arg);
	return ret < 0 ? -errno : ret;
}

int kvmpy_ioctl_int(int fd, unsigned long request, unsigned long arg)
{
	int ret = ioctl(fd, request, arg);
	return ret < 0 ? -errno : ret;
}

int kvmpy_kvm_run(int vcpu_fd)
{
	int ret = ioctl(vcpu_fd, KVM_RUN, 0);
	return ret < 0 ? -errno : ret;
}

static void kick_handler(int signum)
{
	(void)signum;
}

int kvmpy_install_kick_handler(int signum)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = kick_handler;
	sigemptyset(&action.sa_mask);
	action.sa_flags = 0; /* no SA_RESTART: KVM_RUN must come back with EINTR */
	return sigaction(signum, &action, NULL) < 0 ? -errno : 0;
}

int kvmpy_run_port_loop(int vcpu_fd, struct kvm_run *run, uint16_t port, uint64_t *count)
{
	for (;;) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != port)
			return (int)run->exit_reason;
		if (run->io.direction == KVM_EXIT_IO_IN)
			memset((uint8_t *)run + run->io.data_offset, 0,
			       (size_t)run->io.size * run->io.count);
		(*count)++;
	}
}

void kvmpy_host_countdown(uint64_t iterations)
{
	if (iterations)
		__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(iterations) : : "cc");
}

/* The benchmark's compute blocks (native/compute_blocks.inc) on the host itself. */
__asm__(".include \"compute_blocks.inc\"");

void kvmpy_host_x87_loop(uint64_t iterations)
{
	if (iterations)
		__asm__ volatile(".intel_syntax noprefix\n\tX87_SETUP\n1:\n\tX87_BLOCK\n\tdec rcx\n\tjnz 1b\n"
				 "\tX87_CLEANUP\n\t.att_syntax prefix"
				 : "+c"(iterations) : : "cc", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)",
				   "st(6)", "st(7)");
}

void kvmpy_host_avx2_loop(uint64_t iterations)
{
	if (iterations)
		__asm__ volatile(".intel_syntax noprefix\n\tAVX2_SETUP\n1:\n\tAVX2_BLOCK\n\tdec rcx\n\tjnz 1b\n"
				 "\tAVX2_CLEANUP\n\t.att_syntax prefix"
				 : "+c"(iterations) : : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
				   "xmm7", "xmm8");
}

uint64_t kvmpy_rdtsc(void)
{
	uint32_t low, high;

	__asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
	return (uint64_t)high << 32 | low;
}

uint64_t kvmpy_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
