"""vCPUs: the KVM vCPU fd and its register state, start-up modes, CPUID, the run thread."""
