/*
 * hostile: a misbehaving process for syscont's bad-input tests.
 *
 * Built by the tests with `gcc -static -O2 -pthread` and bind-mounted into
 * containers (and run on the host for the agent-socket peer test). Every mode
 * prints "name result" lines, where result is "ok", an errno name, or a
 * figure; the tests compare them with plain runc or with expected limits.
 *
 *   hostile efault                 bad pointers: path, open_how, sysinfo buffer
 *   hostile unterminated           path strings running into a PROT_NONE page
 *   hostile longpath               5000-byte path; a 4000-byte spelling of /proc/meminfo
 *   hostile race SECONDS           a thread rewrites the path while opens are trapped
 *   hostile flood SECONDS [PATH]   open+read+close PATH (default /proc/meminfo) in a loop
 *   hostile timed N PATH           N open+read+close of PATH; prints elapsed ms and
 *                                  the first line of the last read
 *   hostile memcheck SECONDS KB [PAUSE_US]
 *                                  read /proc/meminfo in a loop (pausing PAUSE_US
 *                                  between reads); count reads whose MemTotal is
 *                                  not KB (another container's data)
 *   hostile sysinfocheck SECONDS BYTES
 *                                  sysinfo(2) flat out; count answers whose RAM is
 *                                  not BYTES, and failed calls
 *   hostile abi                    open /proc/meminfo and sysinfo through the i386
 *                                  (int $0x80) and x32 syscall ABIs
 *   hostile agent-peer SOCKET      send a valid ContainerProcessState with a real
 *                                  seccomp listener fd; report whether the peer
 *                                  closed the connection, and whether the
 *                                  listener was dropped (trapped call -> ENOSYS)
 *   hostile setid DIR              try to make set-uid, set-gid and capability-bearing
 *                                  files in DIR by every call that can (creat, open,
 *                                  openat, openat2, O_TMPFILE + linkat, mknod, mknodat,
 *                                  fchmod, fchmodat, fchmodat2, chmod through
 *                                  /proc/self/fd, the setxattr calls, i386 chmod);
 *                                  then the calls that must never be refused (chmod
 *                                  0644, a user.* xattr, set-gid on a directory)
 *   hostile getcap PATH            whether PATH has a security.capability xattr
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "ok";
    case EFAULT: return "EFAULT";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case ENOSYS: return "ENOSYS";
    case EXDEV: return "EXDEV";
    case ELOOP: return "ELOOP";
    case ENOTDIR: return "ENOTDIR";
    case EINTR: return "EINTR";
    case EMFILE: return "EMFILE";
    case EEXIST: return "EEXIST";
    case EBADF: return "EBADF";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

/* Result of a raw open-like syscall: "ok" (fd closed) or the errno name. */
static const char *res(long r)
{
    if (r >= 0) {
        close((int)r);
        return "ok";
    }
    return errname(errno);
}

static long sys_openat2(int dirfd, const void *path, const void *how, size_t size)
{
    return syscall(SYS_openat2, dirfd, path, how, size);
}

/* Read the whole file at fd into buf (NUL-terminated); returns bytes read. */
static ssize_t slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    return (ssize_t)n;
}

/* "MemTotal=<kB>" from the file at fd, or "read-error"/"no-MemTotal". */
static const char *memtotal_of(int fd)
{
    static char out[64];
    char buf[16384];
    if (slurp(fd, buf, sizeof buf) < 0)
        return errname(errno);
    char *p = strstr(buf, "MemTotal:");
    if (!p)
        return "no-MemTotal";
    snprintf(out, sizeof out, "MemTotal=%lld", strtoll(p + 9, NULL, 10));
    return out;
}

static int mode_efault(void)
{
    struct open_how how = { .flags = O_RDONLY };
    printf("open_ptr1 %s\n", res(syscall(SYS_open, (char *)1, O_RDONLY)));
    printf("openat_ptr1 %s\n", res(syscall(SYS_openat, AT_FDCWD, (char *)1, O_RDONLY)));
    printf("openat_kernel_ptr %s\n",
           res(syscall(SYS_openat, AT_FDCWD, (char *)0xffffffffff600000UL, O_RDONLY)));
    printf("openat2_path_ptr1 %s\n", res(sys_openat2(AT_FDCWD, (char *)1, &how, sizeof how)));
    printf("openat2_how_ptr1 %s\n", res(sys_openat2(AT_FDCWD, "/proc/meminfo", (void *)1, sizeof how)));
    printf("openat2_how_null %s\n", res(sys_openat2(AT_FDCWD, "/proc/meminfo", NULL, sizeof how)));
    long r = syscall(SYS_sysinfo, (void *)1);
    printf("sysinfo_ptr1 %s\n", r == 0 ? "ok" : errname(errno));
    /* a read-only buffer: the kernel cannot write the result there */
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r = syscall(SYS_sysinfo, ro);
    printf("sysinfo_readonly %s\n", r == 0 ? "ok" : errname(errno));
    /* a struct sysinfo straddling into a PROT_NONE page */
    char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(two + 4096, 4096, PROT_NONE);
    r = syscall(SYS_sysinfo, two + 4096 - 16);
    printf("sysinfo_straddle %s\n", r == 0 ? "ok" : errname(errno));
    return 0;
}

static int mode_unterminated(void)
{
    char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (two == MAP_FAILED)
        return 2;
    mprotect(two + 4096, 4096, PROT_NONE);
    const char *s = "/proc/meminfo";
    size_t n = strlen(s);
    /* "/proc/meminfo" with no NUL, ending exactly at the guard page */
    char *p = two + 4096 - n;
    memcpy(p, s, n);
    printf("meminfo_unterminated %s\n", res(syscall(SYS_openat, AT_FDCWD, p, O_RDONLY)));
    printf("meminfo_unterminated_open %s\n", res(syscall(SYS_open, p, O_RDONLY)));
    struct open_how how = { .flags = O_RDONLY };
    printf("meminfo_unterminated_openat2 %s\n", res(sys_openat2(AT_FDCWD, p, &how, sizeof how)));
    const char *e = "/etc/hostname";
    n = strlen(e);
    p = two + 4096 - n;
    memcpy(p, e, n);
    printf("hostname_unterminated %s\n", res(syscall(SYS_openat, AT_FDCWD, p, O_RDONLY)));
    /* a whole page of slashes and no NUL: longer than PATH_MAX */
    memset(two, '/', 4096);
    printf("page_of_slashes %s\n", res(syscall(SYS_openat, AT_FDCWD, two, O_RDONLY)));
    /* the path starts in the PROT_NONE page */
    printf("path_in_guard_page %s\n", res(syscall(SYS_openat, AT_FDCWD, two + 4096, O_RDONLY)));
    return 0;
}

static int mode_longpath(void)
{
    static char path[8192];
    memset(path, 0, sizeof path);
    strcpy(path, "/proc/");
    memset(path + 6, 'a', 4994);
    printf("path_5000 %s\n", res(syscall(SYS_openat, AT_FDCWD, path, O_RDONLY)));
    memset(path, 0, sizeof path);
    strcpy(path, "/proc");
    memset(path + 5, '/', 4096);
    strcpy(path + 5 + 4096, "meminfo");
    printf("meminfo_4108 %s\n", res(syscall(SYS_openat, AT_FDCWD, path, O_RDONLY)));
    /* 4000 bytes that still name /proc/meminfo */
    memset(path, 0, sizeof path);
    strcpy(path, "/proc");
    memset(path + 5, '/', 3990);
    strcpy(path + 5 + 3990, "meminfo");
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd < 0) {
        printf("meminfo_4002 %s\n", errname(errno));
    } else {
        printf("meminfo_4002 %s\n", memtotal_of(fd));
        close(fd);
    }
    /* a 300-byte component */
    memset(path, 0, sizeof path);
    strcpy(path, "/proc/");
    memset(path + 6, 'm', 300);
    printf("component_300 %s\n", res(syscall(SYS_openat, AT_FDCWD, path, O_RDONLY)));
    return 0;
}

static volatile int stop_flag;
static char race_buf[64] = "/proc/meminfo";

static void spin(void)
{
    for (volatile int i = 0; i < 2000; i++)
        ;
}

static void *flipper(void *arg)
{
    (void)arg;
    while (!stop_flag) {
        memcpy(race_buf, "/etc/hostname", 14);
        spin();
        memcpy(race_buf, "/proc/meminfo", 14);
        spin();
        memcpy(race_buf, "/proc/uptime\0", 14);
        spin();
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int mode_race(double secs)
{
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    long opens = 0, meminfo = 0, uptime = 0, hostname = 0, errors = 0, other = 0;
    double end = now() + secs;
    char buf[16384];
    while (now() < end) {
        int fd = (int)syscall(SYS_openat, AT_FDCWD, race_buf, O_RDONLY);
        opens++;
        if (fd < 0) {
            errors++;
            continue;
        }
        if (slurp(fd, buf, sizeof buf) < 0)
            errors++;
        else if (strncmp(buf, "MemTotal:", 9) == 0)
            meminfo++;
        else if (buf[0] >= '0' && buf[0] <= '9' && strchr(buf, '.'))
            uptime++;
        else if (buf[0])
            hostname++;
        else
            other++;
        close(fd);
    }
    stop_flag = 1;
    pthread_join(t, NULL);
    printf("race opens=%ld meminfo=%ld uptime=%ld hostname=%ld errors=%ld other=%ld\n", opens, meminfo,
           uptime, hostname, errors, other);
    return 0;
}

static int mode_flood(double secs, const char *path)
{
    long n = 0, bad = 0;
    char buf[16384];
    double end = now() + secs;
    printf("flood started\n");
    fflush(stdout);
    while (now() < end) {
        int fd = open(path, O_RDONLY);
        if (fd < 0 || slurp(fd, buf, sizeof buf) <= 0)
            bad++;
        if (fd >= 0)
            close(fd);
        n++;
    }
    printf("flood opens=%ld bad=%ld\n", n, bad);
    return bad ? 1 : 0;
}

static int mode_timed(long n, const char *path)
{
    char buf[16384];
    buf[0] = 0;
    long bad = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0 || slurp(fd, buf, sizeof buf) <= 0)
            bad++;
        if (fd >= 0)
            close(fd);
    }
    double ms = (now() - t0) * 1000.0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    printf("timed n=%ld bad=%ld ms=%.0f first_line=%s\n", n, bad, ms, buf);
    return 0;
}

static int mode_memcheck(double secs, long long want, long pause_us)
{
    long n = 0, wrong = 0, bad = 0;
    char buf[16384];
    double end = now() + secs;
    while (now() < end) {
        int fd = open("/proc/meminfo", O_RDONLY);
        if (fd < 0 || slurp(fd, buf, sizeof buf) <= 0) {
            bad++;
        } else {
            char *p = strstr(buf, "MemTotal:");
            if (!p || strtoll(p + 9, NULL, 10) != want)
                wrong++;
        }
        if (fd >= 0)
            close(fd);
        n++;
        if (pause_us > 0)
            usleep(pause_us);
    }
    printf("memcheck reads=%ld wrong=%ld bad=%ld\n", n, wrong, bad);
    return 0;
}

/* An i386 syscall from this 64-bit process: arguments are 32 bits wide. */
static long sys_i386(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

static void report_fd(const char *label, long r)
{
    if (r < 0) {
        printf("%s %s\n", label, errname((int)-r));
        return;
    }
    printf("%s %s\n", label, memtotal_of((int)r));
    close((int)r);
}

/* An i386 syscall with five arguments. */
static long sys_i386_5(long nr, long a, long b, long c, long d, long e)
{
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                     : "memory");
    return ret;
}

static double uptime_of(int fd)
{
    char b[128];
    ssize_t n = read(fd, b, sizeof b - 1);
    if (n <= 0)
        return -1;
    b[n] = 0;
    return atof(b);
}

static int mode_abi(void)
{
    /* buffers below 4 GiB, reachable through 32-bit pointers */
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED)
        return 2;
    strcpy(low, "/proc/meminfo");
    long i386_open = 5, i386_openat = 295, i386_sysinfo = 116;
    report_fd("i386_open", sys_i386(i386_open, (long)low, O_RDONLY, 0));
    report_fd("i386_openat", sys_i386(i386_openat, AT_FDCWD & 0xffffffffL, (long)low, O_RDONLY));
    unsigned char *si = (unsigned char *)low + 1024;
    memset(si, 0, 64);
    long r = sys_i386(i386_sysinfo, (long)si, 0, 0);
    if (r < 0) {
        printf("i386_sysinfo %s\n", errname((int)-r));
    } else {
        uint32_t total, unit;
        memcpy(&total, si + 16, 4);
        memcpy(&unit, si + 52, 4);
        printf("i386_sysinfo totalram_bytes=%llu\n", (unsigned long long)total * (unit ? unit : 1));
    }
    /* i386 rewind: _llseek(fd, 0, 0, &result, SEEK_SET) must give fresh
     * content, as procfs does. */
    strcpy(low + 2048, "/proc/uptime");
    long ufd = sys_i386(i386_open, (long)(low + 2048), O_RDONLY, 0);
    if (ufd < 0) {
        printf("i386_rewind %s\n", errname((int)-ufd));
    } else {
        double a = uptime_of((int)ufd);
        usleep(1200000);
        long i386_llseek = 140;
        long r2 = sys_i386_5(i386_llseek, ufd, 0, 0, (long)(low + 3072), SEEK_SET);
        double b = r2 < 0 ? -1 : uptime_of((int)ufd);
        printf("i386_rewind %s\n", r2 < 0 ? errname((int)-r2) : (b > a ? "fresh" : "stale"));
        close((int)ufd);
    }
    long x32 = 0x40000000L;
    long fd = syscall(x32 | SYS_open, low, O_RDONLY);
    report_fd("x32_open", fd < 0 ? -errno : fd);
    fd = syscall(x32 | SYS_openat, AT_FDCWD, low, O_RDONLY);
    report_fd("x32_openat", fd < 0 ? -errno : fd);
    return 0;
}

/* A filter that notifies on getpriority and allows the rest; returns the
 * listener fd. */
static int install_listener(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpriority, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

static int mode_agent_peer(const char *sock)
{
    int lfd = install_listener();
    if (lfd < 0) {
        printf("listener %s\n", errname(errno));
        return 2;
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        printf("connect %s\n", errname(errno));
        return 2;
    }
    printf("connect ok\n");
    char json[1024];
    int pid = getpid();
    int len = snprintf(json, sizeof json,
                       "{\"ociVersion\":\"1.0.2-dev\",\"fds\":[\"seccompFd\"],\"pid\":%d,"
                       "\"metadata\":\"{\\\"v\\\":1,\\\"orig\\\":{}}\","
                       "\"state\":{\"ociVersion\":\"1.0.2-dev\",\"id\":\"hostile-peer\","
                       "\"status\":\"creating\",\"pid\":%d,\"bundle\":\"/nonexistent\"}}",
                       pid, pid);
    struct iovec iov = { .iov_base = json, .iov_len = (size_t)len };
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &lfd, sizeof(int));
    ssize_t w = sendmsg(s, &m, MSG_NOSIGNAL);
    printf("send %s\n", w < 0 ? errname(errno) : "ok");
    /* Wait up to 5 s for the supervisor to close the connection. */
    struct pollfd p = { .fd = s, .events = POLLIN };
    int pr = poll(&p, 1, 5000);
    char b;
    if (pr == 1 && recv(s, &b, 1, 0) <= 0)
        printf("peer closed\n");
    else
        printf("peer open\n");
    close(s);
    close(lfd);
    /* If nobody else holds the listener, the trapped call fails with ENOSYS;
     * a supervisor that kept the fd would answer it instead. */
    alarm(10);
    long r = syscall(SYS_getpriority, 0, 0);
    printf("trapped %s\n", r < 0 ? errname(errno) : "answered");
    return 0;
}

/* "ok" for a syscall that returned 0, else the errno name. */
static const char *res0(long r)
{
    return r == 0 ? "ok" : errname(errno);
}

/* A fresh plain file DIR/NAME (mode 0755), its path in buf. */
static int plain_file(const char *dir, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    unlink(buf);
    int fd = open(buf, O_CREAT | O_WRONLY | O_EXCL | O_CLOEXEC, 0755);
    if (fd >= 0)
        fchmod(fd, 0755); /* whatever the umask */
    return fd;
}

static int mode_setid(const char *dir)
{
    char p[4096], q[4096];
    /* A file capability (VFS_CAP_REVISION_2: magic, permitted, inheritable
     * of two words): cap_net_raw (13) permitted and effective. */
    uint32_t cap[5] = { 0x02000000 | 0x000001, 1u << 13, 0, 0, 0 };

    /* Creating a set-id file. */
    snprintf(p, sizeof p, "%s/creat_open", dir);
    unlink(p);
    printf("open_creat_04755 %s\n", res(syscall(SYS_open, p, O_CREAT | O_WRONLY | O_EXCL, 04755)));
    snprintf(p, sizeof p, "%s/creat_openat", dir);
    unlink(p);
    printf("openat_creat_02755 %s\n", res(syscall(SYS_openat, AT_FDCWD, p, O_CREAT | O_WRONLY, 02755)));
    snprintf(p, sizeof p, "%s/creat_creat", dir);
    unlink(p);
    printf("creat_04755 %s\n", res(syscall(SYS_creat, p, 04755)));
    struct { struct open_how how; uint64_t pad; } big = { { .flags = O_CREAT | O_WRONLY, .mode = 04755 }, 0 };
    snprintf(p, sizeof p, "%s/creat_openat2", dir);
    unlink(p);
    printf("openat2_creat_04755 %s\n", res(sys_openat2(AT_FDCWD, p, &big.how, sizeof big.how)));
    snprintf(p, sizeof p, "%s/creat_openat2_32", dir);
    unlink(p);
    printf("openat2_32_creat_04755 %s\n", res(sys_openat2(AT_FDCWD, p, &big, sizeof big)));
    /* An unnamed set-uid file, then given a name. */
    long t = syscall(SYS_open, dir, O_TMPFILE | O_WRONLY, 04755);
    if (t < 0) {
        printf("tmpfile_04755 %s\n", errname(errno));
    } else {
        snprintf(p, sizeof p, "/proc/self/fd/%ld", t);
        snprintf(q, sizeof q, "%s/creat_tmpfile", dir);
        unlink(q);
        printf("tmpfile_04755 %s\n", res0(linkat(AT_FDCWD, p, AT_FDCWD, q, AT_SYMLINK_FOLLOW)));
        close((int)t);
    }
    snprintf(p, sizeof p, "%s/creat_mknod", dir);
    unlink(p);
    printf("mknod_04755 %s\n", res0(syscall(SYS_mknod, p, S_IFREG | 04755, 0)));
    snprintf(p, sizeof p, "%s/creat_mknodat", dir);
    unlink(p);
    printf("mknodat_02755 %s\n", res0(syscall(SYS_mknodat, AT_FDCWD, p, 02755, 0)));

    /* Making an existing file set-id. */
    int fd = plain_file(dir, "chmod_fchmod", p, sizeof p);
    printf("fchmod_04755 %s\n", fd < 0 ? errname(errno) : res0(syscall(SYS_fchmod, fd, 04755)));
    if (fd >= 0)
        close(fd);
    fd = plain_file(dir, "chmod_fchmodat", p, sizeof p);
    if (fd >= 0)
        close(fd);
    printf("fchmodat_06755 %s\n", res0(syscall(SYS_fchmodat, AT_FDCWD, p, 06755)));
    fd = plain_file(dir, "chmod_fchmodat2", p, sizeof p);
    printf("fchmodat2_04755 %s\n", res0(syscall(452, AT_FDCWD, p, 04755, 0)));
    printf("fchmodat2_empty_04755 %s\n", res0(syscall(452, fd, "", 04755, AT_EMPTY_PATH)));
    if (fd >= 0)
        close(fd);
    fd = plain_file(dir, "chmod_proc_self_fd", q, sizeof q);
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    printf("chmod_proc_self_fd_04755 %s\n", res0(syscall(SYS_chmod, p, 04755)));
    snprintf(p, sizeof p, "/dev/fd/%d", fd);
    printf("chmod_dev_fd_04755 %s\n", res0(syscall(SYS_chmod, p, 04755)));
    if (fd >= 0)
        close(fd);
    fd = plain_file(dir, "chmod_dirfd", p, sizeof p);
    if (fd >= 0)
        close(fd);
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    printf("fchmodat_dirfd_02755 %s\n", res0(syscall(SYS_fchmodat, dfd, "chmod_dirfd", 02755)));
    close(dfd);
    /* i386: chmod(15) through int $0x80, the path below 4 GiB. */
    fd = plain_file(dir, "chmod_i386", p, sizeof p);
    if (fd >= 0)
        close(fd);
    char *low = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        printf("i386_chmod_04755 %s\n", errname(errno));
    } else {
        snprintf(low, 8192, "%s", p);
        long r = sys_i386(15, (long)low, 04755, 0);
        printf("i386_chmod_04755 %s\n", r < 0 ? errname((int)-r) : "ok");
        munmap(low, 8192);
    }

    /* File capabilities. */
    fd = plain_file(dir, "xattr_cap", p, sizeof p);
    printf("setxattr_cap %s\n", res0(setxattr(p, "security.capability", cap, sizeof cap, 0)));
    printf("lsetxattr_cap %s\n", res0(lsetxattr(p, "security.capability", cap, sizeof cap, 0)));
    printf("fsetxattr_cap %s\n", fd < 0 ? errname(errno) : res0(fsetxattr(fd, "security.capability", cap, sizeof cap, 0)));

    /* Never refused. */
    printf("fsetxattr_user %s\n", fd < 0 ? errname(errno) : res0(fsetxattr(fd, "user.syscont", "x", 1, 0)));
    printf("chmod_0644 %s\n", res0(syscall(SYS_chmod, p, 0644)));
    if (fd >= 0)
        close(fd);
    snprintf(p, sizeof p, "%s/dir_setgid", dir);
    rmdir(p);
    mkdir(p, 0755);
    printf("chmod_dir_02775 %s\n", res0(syscall(SYS_chmod, p, 02775)));
    snprintf(p, sizeof p, "%s/missing/x", dir);
    printf("chmod_missing_04755 %s\n", res0(syscall(SYS_chmod, p, 04755)));
    return 0;
}

static int mode_getcap(const char *path)
{
    char buf[64];
    ssize_t n = lgetxattr(path, "security.capability", buf, sizeof buf);
    printf("getcap %s\n", n >= 0 ? "present" : errno == ENODATA ? "absent" : errname(errno));
    return 0;
}

/* sysinfo(2) flat out for SECS seconds: every answer must give WANT bytes
 * of RAM (the container's limit). Prints reads, wrong and bad counts. */
static int mode_sysinfocheck(double secs, long long want)
{
    long n = 0, wrong = 0, bad = 0;
    double end = now() + secs;
    while (now() < end) {
        struct sysinfo si;
        memset(&si, 0, sizeof si);
        if (sysinfo(&si) != 0)
            bad++;
        else if ((long long)si.totalram * si.mem_unit != want)
            wrong++;
        n++;
    }
    printf("sysinfocheck reads=%ld wrong=%ld bad=%ld\n", n, wrong, bad);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: hostile MODE ...\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "efault"))
        return mode_efault();
    if (!strcmp(m, "unterminated"))
        return mode_unterminated();
    if (!strcmp(m, "longpath"))
        return mode_longpath();
    if (!strcmp(m, "race") && argc >= 3)
        return mode_race(atof(argv[2]));
    if (!strcmp(m, "flood") && argc >= 3)
        return mode_flood(atof(argv[2]), argc >= 4 ? argv[3] : "/proc/meminfo");
    if (!strcmp(m, "timed") && argc >= 4)
        return mode_timed(atol(argv[2]), argv[3]);
    if (!strcmp(m, "memcheck") && argc >= 4)
        return mode_memcheck(atof(argv[2]), atoll(argv[3]), argc >= 5 ? atol(argv[4]) : 0);
    if (!strcmp(m, "sysinfocheck") && argc >= 4)
        return mode_sysinfocheck(atof(argv[2]), atoll(argv[3]));
    if (!strcmp(m, "abi"))
        return mode_abi();
    if (!strcmp(m, "agent-peer") && argc >= 3)
        return mode_agent_peer(argv[2]);
    if (!strcmp(m, "setid") && argc >= 3)
        return mode_setid(argv[2]);
    if (!strcmp(m, "getcap") && argc >= 3)
        return mode_getcap(argv[2]);
    fprintf(stderr, "hostile: unknown mode or missing argument: %s\n", m);
    return 2;
}
