/*
 * kvmpy exec's init: PID 1 of a guest whose root is the host's / over virtio-9p.
 *
 * A Linux x86-64 user program without libc (raw system calls), so it loads nothing through
 * 9p but itself and needs no tool of the host's: under the interpreter every dynamically
 * linked helper (sh, mount, chroot, dd) costs tens of milliseconds of loader work.
 * Its contract with kvmpy/exec (job.py writes the job, session.py reads the ports):
 *
 *   init ... JOBDIR      (the kernel passes what follows "--" on its command line last)
 *   JOBDIR/argv, env     NUL-terminated strings: the command and its environment
 *   JOBDIR/cwd           the directory to run it in
 *   JOBDIR/rw            NUL-terminated pairs TAG, PATH: read-write 9p shares for PATH
 *   JOBDIR/tty           "1" or "0" for stdout, then stderr: whether the caller's is a terminal
 *
 * It mounts /proc, /sys, /dev and a tmpfs on /tmp; with overlayfs the command runs chrooted
 * in an overlay of the read-only root whose upper layer is on that tmpfs (so everything is
 * writable, the host's /tmp included, and nothing reaches the host), else in the read-only
 * root itself, with that tmpfs on /tmp and others on /run and /var/tmp. stdin is /dev/null, stdout /dev/hvc0, stderr /dev/hvc1.
 * It writes a byte to the boot-timer port when it starts and the command's status (128 +
 * signal for a killed one; 127 not found, 126 not executable; 125 when the init itself
 * fails) to the debug-exit port, which ends the run. Ports and paths come from
 * exec_init.h, generated from kvmpy/exec/contract.py by boot/guests/build.py.
 */
#include "exec_init.h"

typedef unsigned long u64;
typedef long s64;

enum {
    SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_pwrite64 = 18, SYS_dup2 = 33,
    SYS_fork = 57, SYS_execve = 59, SYS_exit = 60, SYS_wait4 = 61, SYS_chdir = 80, SYS_mkdir = 83,
    SYS_chroot = 161, SYS_sync = 162, SYS_mount = 165, SYS_reboot = 169, SYS_ioctl = 16, SYS_pipe2 = 293,
};
enum { O_RDONLY = 0, O_WRONLY = 1, O_CLOEXEC = 02000000 };
enum { ENOENT = 2, EACCES = 13, EBUSY = 16, ENOEXEC = 8, ENODEV = 19, ENOTDIR = 20 };
enum { MS_NOSUID = 2, MS_NODEV = 4 };
#define REBOOT_MAGIC1 0xfee1dead
#define REBOOT_MAGIC2 672274793
#define REBOOT_POWER_OFF 0x4321fedc

enum { TCGETS = 0x5401, TCSETS = 0x5402, OPOST = 1 };
struct termios { unsigned c_iflag, c_oflag, c_cflag, c_lflag; unsigned char c_line, c_cc[19]; };

#define MAX_FILE (256 * 1024)  /* each job file; Linux's own argv+env limit is near this */
#define MAX_STRINGS 8192

static s64 syscall6(s64 n, s64 a, s64 b, s64 c, s64 d, s64 e, s64 f)
{
    s64 ret;
    register s64 r10 __asm__("r10") = d;
    register s64 r8 __asm__("r8") = e;
    register s64 r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys(n, a, b, c) syscall6(n, (s64)(a), (s64)(b), (s64)(c), 0, 0, 0)

/* gcc may emit calls to these even for a freestanding program */
void *memset(void *d, int c, u64 n) { char *p = d; while (n--) *p++ = (char)c; return d; }
void *memcpy(void *d, const void *s, u64 n) { char *p = d; const char *q = s; while (n--) *p++ = *q++; return d; }

static u64 length(const char *s) { u64 n = 0; while (s[n]) n++; return n; }

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix) if (*s++ != *prefix++) return 0;
    return 1;
}

/* join(out, size, a, b, c): a + b + c into out; NULL parts are empty */
static char *join(char *out, u64 size, const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    u64 at = 0;
    for (int i = 0; i < 3; i++)
        for (const char *p = parts[i]; p && *p && at + 1 < size; p++) out[at++] = *p;
    out[at] = 0;
    return out;
}

static void say(const char *a, const char *b, const char *c)
{
    char line[1024];
    join(line, sizeof line - 1, a, b, c);
    u64 n = length(line);
    line[n++] = '\n';
    sys(SYS_write, 2, line, n);
}

static const char *error_name(s64 error)
{
    switch (-error) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case EBUSY: return "Device or resource busy";
    case ENOEXEC: return "Exec format error";
    case ENODEV: return "No such device (not in this kernel)";
    case ENOTDIR: return "Not a directory";
    default: return "error";
    }
}

static void port_write(u64 port, unsigned char value)
{
    s64 fd = sys(SYS_open, "/dev/port", O_WRONLY, 0);
    if (fd >= 0) {
        syscall6(SYS_pwrite64, fd, (s64)&value, 1, (s64)port, 0, 0);
        sys(SYS_close, fd, 0, 0);
    }
}

static void finish(int status)
{
    port_write(DEBUG_EXIT_PORT, (unsigned char)status);
    say("kvmpy exec init: the debug-exit port did not stop the machine; powering off", 0, 0);
    syscall6(SYS_reboot, REBOOT_MAGIC1, REBOOT_MAGIC2, REBOOT_POWER_OFF, 0, 0, 0);
    for (;;) sys(SYS_exit, status, 0, 0);
}

static void fail(const char *what, const char *path, s64 error)
{
    char detail[512];
    say("kvmpy exec init: ", join(detail, sizeof detail, what, path, ": "), error_name(error));
    finish(INIT_FAILED);
}

static s64 mount(const char *source, const char *target, const char *type, u64 flags, const char *data)
{
    return syscall6(SYS_mount, (s64)source, (s64)target, (s64)type, (s64)flags, (s64)data, 0);
}

static void must_mount(const char *source, const char *target, const char *type, u64 flags, const char *data)
{
    s64 error = mount(source, target, type, flags, data);
    if (error < 0 && error != -EBUSY) fail("cannot mount ", target, error);
}

/* read_job(dir, name, buffer): the whole file into buffer (NUL-terminated), its length */
static u64 read_job(const char *dir, const char *name, char *buffer)
{
    char path[4096];
    s64 fd = sys(SYS_open, join(path, sizeof path, dir, "/", name), O_RDONLY, 0);
    if (fd < 0) fail("cannot open ", path, fd);
    u64 at = 0;
    for (;;) {
        s64 n = sys(SYS_read, fd, buffer + at, MAX_FILE - 1 - at);
        if (n < 0) fail("cannot read ", path, n);
        if (n == 0 || at + n >= MAX_FILE - 1) { at += n > 0 ? n : 0; break; }
        at += n;
    }
    sys(SYS_close, fd, 0, 0);
    buffer[at] = 0;
    return at;
}

/* split(buffer, n, out): the NUL-terminated strings of buffer[0..n) as a NULL-ended array */
static char **split(char *buffer, u64 n, char **out)
{
    int count = 0;
    for (u64 at = 0; at < n && count < MAX_STRINGS - 1; at += length(buffer + at) + 1) out[count++] = buffer + at;
    out[count] = 0;
    return out;
}

static char argv_file[MAX_FILE], env_file[MAX_FILE], cwd_file[MAX_FILE], rw_file[MAX_FILE], tty_file[MAX_FILE];
static char *command[MAX_STRINGS], *environment[MAX_STRINGS], *rw[MAX_STRINGS];

/* open_console(path): the console for writing, with output processing off (bytes pass as they are) */
static s64 open_console(const char *path)
{
    s64 fd = sys(SYS_open, path, O_WRONLY | O_CLOEXEC, 0);  /* the command gets it as 1 or 2 only */
    struct termios mode;
    if (fd >= 0 && sys(SYS_ioctl, fd, TCGETS, &mode) == 0) {
        mode.c_oflag &= ~OPOST;
        sys(SYS_ioctl, fd, TCSETS, &mode);
    }
    return fd;
}

/* relay(console): a child copying a new pipe to `console` until every writer has closed it;
 * returns the pipe's write end and the child's pid in *pid. */
static s64 relay(s64 console, s64 *pid)
{
    int ends[2];
    s64 error = sys(SYS_pipe2, ends, O_CLOEXEC, 0);
    if (error < 0) fail("cannot make a pipe", "", error);
    *pid = sys(SYS_fork, 0, 0, 0);
    if (*pid < 0) fail("cannot fork", "", *pid);
    if (*pid == 0) {
        static char buffer[65536];
        sys(SYS_close, ends[1], 0, 0);
        for (;;) {
            s64 n = sys(SYS_read, ends[0], buffer, sizeof buffer);
            if (n <= 0) sys(SYS_exit, 0, 0, 0);
            for (s64 at = 0; at < n; ) {
                s64 written = sys(SYS_write, console, buffer + at, n - at);
                if (written <= 0) sys(SYS_exit, 1, 0, 0);
                at += written;
            }
        }
    }
    sys(SYS_close, ends[0], 0, 0);
    return ends[1];
}

/* wait_for(pids, n): until each nonzero pid of pids[0..n) has ended, reaping every orphan on
 * the way (PID 1's duty); pids[0]'s status as a shell gives it (128 + the signal that killed
 * it). One wait for all: a pid reaped while waiting for another is never waited for again. */
static int wait_for(const s64 *pids, int n)
{
    int status = 0, left = 0;
    for (int i = 0; i < n; i++) left += pids[i] != 0;
    while (left) {
        int raw = 0;
        s64 done = syscall6(SYS_wait4, -1, (s64)&raw, 0, 0, 0, 0);
        if (done < 0) break;
        for (int i = 0; i < n; i++) {
            if (pids[i] != done) continue;
            if (i == 0) status = raw & 0x7f ? 128 + (raw & 0x7f) : (raw >> 8) & 0xff;
            left--;
        }
    }
    return status;
}

/* Run in the child: the command with PATH searched as execvp does; returns only on failure. */
static int exec_command(void)
{
    const char *name = command[0];
    s64 error;
    char path[4096];
    if (name[0] == '/' || starts_with(name, "./") || starts_with(name, "../")) {
        error = sys(SYS_execve, name, command, environment);
    } else {
        error = -ENOENT;
        const char *search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (char **variable = environment; *variable; variable++)
            if (starts_with(*variable, "PATH=")) search = *variable + 5;
        for (const char *dir = search; ; ) {
            char entry[4096];
            u64 n = 0;
            while (dir[n] && dir[n] != ':' && n < sizeof entry - 1) { entry[n] = dir[n]; n++; }
            entry[n] = 0;
            s64 result = sys(SYS_execve, join(path, sizeof path, n ? entry : ".", "/", name), command, environment);
            if (result == -EACCES || error == -ENOENT) error = result;  /* as execvp: EACCES wins */
            if (!dir[n]) break;
            dir += n + 1;
        }
    }
    say("kvmpy exec init: ", command[0], error == -ENOENT ? ": command not found" : ": cannot run it");
    return error == -ENOENT ? 127 : 126;
}

static void start(int argc, char **argv)
{
    static const char *overlay_data =
        "lowerdir=/,upperdir=" OVERLAY_DIR "/upper,workdir=" OVERLAY_DIR "/work";
    const char *job = argc > 1 ? argv[argc - 1] : 0;  /* last: unknown words of the command line come first */
    char path[4096];

    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV, 0);
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV, 0);
    mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, 0);  /* EBUSY where the kernel mounted it */
    s64 console = sys(SYS_open, STDERR_CONSOLE, O_WRONLY | O_CLOEXEC, 0);
    if (console >= 0) { sys(SYS_dup2, console, 1, 0); sys(SYS_dup2, console, 2, 0); }
    port_write(BOOT_TIMER_PORT, 1);
    if (!job) fail("no job directory on the kernel command line (after --)", "", -ENOENT);

    split(argv_file, read_job(job, "argv", argv_file), command);
    split(env_file, read_job(job, "env", env_file), environment);
    read_job(job, "cwd", cwd_file);
    split(rw_file, read_job(job, "rw", rw_file), rw);
    read_job(job, "tty", tty_file);
    if (!command[0]) fail("an empty command in ", job, -ENOENT);

    must_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    const char *root = "";
    sys(SYS_mkdir, OVERLAY_DIR, 0700, 0);
    sys(SYS_mkdir, OVERLAY_DIR "/upper", 0755, 0);
    sys(SYS_mkdir, OVERLAY_DIR "/work", 0700, 0);
    sys(SYS_mkdir, OVERLAY_DIR "/root", 0755, 0);
    s64 overlay = mount("overlay", OVERLAY_DIR "/root", "overlay", 0, overlay_data);
    if (overlay == 0) {
        root = OVERLAY_DIR "/root";
        must_mount("proc", join(path, sizeof path, root, "/proc", 0), "proc", MS_NOSUID | MS_NODEV, 0);
        must_mount("sysfs", join(path, sizeof path, root, "/sys", 0), "sysfs", MS_NOSUID | MS_NODEV, 0);
        must_mount("devtmpfs", join(path, sizeof path, root, "/dev", 0), "devtmpfs", MS_NOSUID, 0);
    } else if (overlay != -ENODEV) {
        fail("cannot mount the overlay on ", OVERLAY_DIR "/root", overlay);
    } else {
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
        mount("tmpfs", "/var/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    }
    sys(SYS_mkdir, join(path, sizeof path, root, "/dev/pts", 0), 0755, 0);
    mount("devpts", path, "devpts", MS_NOSUID, "mode=620,ptmxmode=666");
    sys(SYS_mkdir, join(path, sizeof path, root, "/dev/shm", 0), 01777, 0);
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    for (char **share = rw; share[0] && share[1]; share += 2)
        must_mount(share[0], join(path, sizeof path, root, share[1], 0), "9p", 0,
                   "trans=virtio,version=9p2000.L,msize=" MSIZE);

    /* stdout and stderr: the consoles, or pipes to them through relays (see the top) */
    const char *consoles[2] = {STDOUT_CONSOLE, STDERR_CONSOLE};
    s64 streams[2], relays[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        s64 console = open_console(consoles[i]);
        if (console < 0) fail("cannot open ", consoles[i], console);
        streams[i] = tty_file[2 * i] == '1' ? console : relay(console, &relays[i]);
    }
    s64 child = sys(SYS_fork, 0, 0, 0);
    if (child < 0) fail("cannot fork", "", child);
    if (child == 0) {
        if (*root) {
            s64 error = sys(SYS_chroot, root, 0, 0);
            if (error < 0) fail("cannot chroot to ", root, error);
        }
        s64 error = sys(SYS_chdir, cwd_file, 0, 0);
        if (error < 0) fail("cannot enter ", cwd_file, error);
        s64 in = sys(SYS_open, "/dev/null", O_RDONLY | O_CLOEXEC, 0);
        if (in >= 0) sys(SYS_dup2, in, 0, 0);
        sys(SYS_dup2, streams[0], 1, 0);
        sys(SYS_dup2, streams[1], 2, 0);
        sys(SYS_exit, exec_command(), 0, 0);
    }
    for (int i = 0; i < 2; i++)
        if (relays[i]) sys(SYS_close, streams[i], 0, 0);  /* the relay ends when the command's copies close */
    const s64 waited[3] = {child, relays[0], relays[1]};
    int status = wait_for(waited, 3);  /* the relays have copied everything once they end */
    if (rw[0]) sys(SYS_sync, 0, 0, 0);
    finish(status);
}

void start_c(long *stack)
{
    start((int)stack[0], (char **)(stack + 1));
}

__asm__(".globl _start\n_start:\n\txor %ebp, %ebp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall start_c\n\thlt\n");
