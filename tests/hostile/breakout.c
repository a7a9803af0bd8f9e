/*
 * breakout: what a hostile root inside a system container tries, one
 * attempt per mode; each prints "<mode> ok" or "<mode> <ERRNO>" and exits 0
 * (the test decides what is expected). Static, no libc extras.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EROFS: return "EROFS";
    case EBADF: return "EBADF";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

static int report(const char *mode, long r)
{
    printf("%s %s\n", mode, r < 0 ? errname(errno) : "ok");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: breakout MODE [ARG]\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "init_module")) {
        static char image[64];
        return report(m, syscall(SYS_init_module, image, sizeof image, ""));
    }
    if (!strcmp(m, "finit_module")) {
        int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
        return report(m, syscall(SYS_finit_module, fd, "", 0));
    }
    if (!strcmp(m, "open_by_handle")) {
        /* The "shocker" escape: needs CAP_DAC_READ_SEARCH in the host's namespace. */
        struct {
            struct file_handle fh;
            unsigned char data[128];
        } h;
        int mount_id;
        h.fh.handle_bytes = sizeof h.data;
        if (name_to_handle_at(AT_FDCWD, "/", &h.fh, &mount_id, 0) < 0) {
            /* Forge one, as the exploit does: ext4's root, inode 2. */
            unsigned int ino_gen[2] = {2, 0};
            h.fh.handle_bytes = sizeof ino_gen;
            h.fh.handle_type = 1; /* FILEID_INO32_GEN */
            memcpy(h.fh.f_handle, ino_gen, sizeof ino_gen);
        }
        int root = open("/", O_RDONLY | O_DIRECTORY);
        return report(m, open_by_handle_at(root, &h.fh, O_RDONLY));
    }
    if (!strcmp(m, "mknod_dev")) {
        /* A real device node (the host's first disk). */
        return report(m, mknod("/tmp/breakout-sda", S_IFBLK | 0600, makedev(8, 0)));
    }
    if (!strcmp(m, "raise_nofile")) {
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_max += 1;
        r.rlim_cur = r.rlim_max;
        return report(m, setrlimit(RLIMIT_NOFILE, &r));
    }
    if (!strcmp(m, "settime")) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return report(m, settimeofday(&tv, NULL));
    }
    if (!strcmp(m, "kill") && argc >= 3) {
        return report(m, kill(atoi(argv[2]), 0));
    }
    if (!strcmp(m, "read") && argc >= 3) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char b[64];
            if (read(fd, b, sizeof b) < 0)
                fd = -1;
        }
        return report(m, fd);
    }
    if (!strcmp(m, "io_uring")) {
        static char params[120];
        return report(m, syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(m, "mount_host_proc")) {
        /* The host's root filesystem device mounted again. */
        mkdir("/tmp/breakout-mnt", 0700);
        return report(m, mount("/dev/vda", "/tmp/breakout-mnt", "ext4", MS_RDONLY, NULL));
    }
    fprintf(stderr, "breakout: unknown mode or missing argument: %s\n", m);
    return 2;
}
