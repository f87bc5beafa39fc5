/*
 * wl_mounts: a process in a mount namespace of its own, holding a mount tree
 * whose every piece is lost when it comes back in another namespace:
 *   tmpfs      scratch/tm (size=4m,mode=0750): a 64 MiB sparse file, a 100 KiB file read through an fd
 *              at offset 4242, a shared mapping of a second file, a nested
 *              directory, a symlink, a hard link, a FIFO, a file with a set mtime
 *   nested     a second tmpfs on tm/inner, shared, with a file
 *   peer       a bind of tm/inner on scratch/peer: the same peer group, so a
 *              mount made under one shows under the other
 *   bind-of    a bind of tm/dir on scratch/dirbind (the first tmpfs, elsewhere)
 *   ro bind    scratch/host bound read-only on scratch/robind
 * WL_MNT=pivot first binds the whole tree of / on scratch/rootfs and pivots into
 * it (as a container's root is a bind of a directory of the host), then mounts
 * a new proc on /proc, and makes / shared. WL_MNT=slave adds a slave mount, which a dump refuses.
 * WL_MNT=ext adds a bind of the host directory WL_EXT_SRC on scratch/ext (an external
 * mount, which the test names with a key): after SIGTERM, scratch/ext/marker must
 * read what the test put in scratch/ext-want by then (the directory the key was
 * mapped to on restore has another marker than the one bound at setup). With
 * WL_EXT_FILE too, that host file is bound on scratch/extfile, which must read
 * the same.
 */
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "workload.h"

#define TMPFS_MAGIC_NR 0x01021994
#define PROC_MAGIC_NR 0x9fa0
#define BIG (100 * 1024)
#define MTIME 1234567890
/* Far larger than the tmpfs: only its two pages may take room. */
#define SPARSE (64 << 20)

static int data_fd;
static char *mapped;

static void must(int ok, const char *what)
{
	if (!ok)
		WL_DIE("%s", what);
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);

	must(fd >= 0 && write(fd, text, len) == (ssize_t)len, path);
	close(fd);
}

static char big[BIG];

static void fill(void)
{
	for (int i = 0; i < BIG; i++)
		big[i] = (char)('a' + (i * 7) % 26);
}

static void pivot(void)
{
	const char *root = wl_path("rootfs");

	must(!mkdir(root, 0755) || errno == EEXIST, "mkdir rootfs");
	must(!mount("/", root, NULL, MS_BIND | MS_REC, NULL), "rbind / on rootfs");
	must(!chdir(root), "chdir rootfs");
	must(!syscall(SYS_pivot_root, ".", "."), "pivot_root");
	must(!umount2(".", MNT_DETACH), "umount old root");
	must(!chdir("/"), "chdir /");
	must(!mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount proc");
	/* A shared root, as a container's often is: every mount made below is shared. */
	must(!mount(NULL, "/", NULL, MS_SHARED, NULL), "make / shared");
}

static void setup(const char *how)
{
	struct timespec t[2] = { { MTIME, 0 }, { MTIME, 0 } };
	int fd;

	must(!unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)");
	must(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
	if (!strcmp(how, "pivot"))
		pivot();
	fill();
	mkdir(wl_path("tm"), 0755);
	must(!mount("wl-tm", wl_path("tm"), "tmpfs", 0, "size=4m,mode=0750"), "mount tm");
	write_file(wl_path("tm/big"), big, BIG, 0644);
	must(!mkdir(wl_path("tm/dir"), 0711) && !mkdir(wl_path("tm/dir/sub"), 0755), "mkdir tm/dir/sub");
	write_file(wl_path("tm/dir/sub/file"), "deep", 4, 0640);
	must(!symlink("big", wl_path("tm/link")), "symlink");
	must(!link(wl_path("tm/big"), wl_path("tm/hard")), "link");
	must(!mkfifo(wl_path("tm/fifo"), 0600), "mkfifo");
	write_file(wl_path("tm/old"), "old", 3, 0600);
	must(!utimensat(AT_FDCWD, wl_path("tm/old"), t, 0), "utimensat");
	write_file(wl_path("tm/mapped"), "", 0, 0600);
	fd = open(wl_path("tm/mapped"), O_RDWR);
	must(fd >= 0 && !ftruncate(fd, 4096), "mapped file");
	mapped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	must(mapped != MAP_FAILED, "mmap");
	close(fd);
	strcpy(mapped, "through the mapping");
	fd = open(wl_path("tm/sparse"), O_CREAT | O_WRONLY, 0600);
	must(fd >= 0 && pwrite(fd, "head", 4, 0) == 4 && pwrite(fd, "tail", 4, SPARSE / 2) == 4 && !ftruncate(fd, SPARSE),
	     "tm/sparse");
	close(fd);
	data_fd = open(wl_path("tm/big"), O_RDONLY);
	must(data_fd >= 0 && lseek(data_fd, 4242, SEEK_SET) == 4242, "open tm/big");
	mkdir(wl_path("tm/inner"), 0755);
	must(!mount("wl-inner", wl_path("tm/inner"), "tmpfs", 0, "size=1m"), "mount tm/inner");
	write_file(wl_path("tm/inner/file"), "inner", 5, 0644);
	must(!mount(NULL, wl_path("tm/inner"), NULL, MS_SHARED, NULL), "make tm/inner shared");
	mkdir(wl_path("peer"), 0755);
	must(!mount(wl_path("tm/inner"), wl_path("peer"), NULL, MS_BIND, NULL), "bind peer");
	mkdir(wl_path("dirbind"), 0755);
	must(!mount(wl_path("tm/dir"), wl_path("dirbind"), NULL, MS_BIND, NULL), "bind dirbind");
	mkdir(wl_path("host"), 0755);
	write_file(wl_path("host/file"), "host", 4, 0644);
	mkdir(wl_path("robind"), 0755);
	must(!mount(wl_path("host"), wl_path("robind"), NULL, MS_BIND, NULL), "bind robind");
	must(!mount(NULL, wl_path("robind"), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), "robind ro");
	if (!strcmp(how, "ext")) {
		const char *src = getenv("WL_EXT_SRC");

		must(src != NULL, "WL_EXT_SRC is not set");
		mkdir(wl_path("ext"), 0755);
		must(!mount(src, wl_path("ext"), NULL, MS_BIND, NULL), "bind WL_EXT_SRC on ext");
		if (getenv("WL_EXT_FILE")) {
			write_file(wl_path("extfile"), "", 0, 0644);
			must(!mount(getenv("WL_EXT_FILE"), wl_path("extfile"), NULL, MS_BIND, NULL),
			     "bind WL_EXT_FILE on extfile");
		}
	}
	if (!strcmp(how, "slave")) {
		mkdir(wl_path("slave"), 0755);
		must(!mount(wl_path("tm/inner"), wl_path("slave"), NULL, MS_BIND, NULL), "bind slave");
		must(!mount(NULL, wl_path("slave"), NULL, MS_SLAVE, NULL), "make slave");
	}
}

static int read_is(const char *path, const char *want)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY), n = -1;

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	return n == (int)strlen(want) && !memcmp(buf, want, n);
}

static dev_t dev_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_dev;
}

static void check(const char *how)
{
	struct statfs sf;
	struct stat st, a, b;
	char buf[BIG];
	off_t pos = lseek(data_fd, 0, SEEK_CUR);

	WL_CHECK(!statfs(wl_path("tm"), &sf) && sf.f_type == TMPFS_MAGIC_NR, "tm is no tmpfs");
	WL_CHECK(!stat(wl_path("tm"), &st) && (st.st_mode & 07777) == 0750, "tm mode %o", st.st_mode & 07777);
	WL_CHECK(!statfs(wl_path("tm"), &sf) && sf.f_blocks * sf.f_bsize == 4 << 20, "tm size %ld",
		 (long)(sf.f_blocks * sf.f_bsize));
	WL_CHECK(pos == 4242, "the fd on tm/big is at %ld", (long)pos);
	WL_CHECK(pread(data_fd, buf, BIG, 0) == BIG && !memcmp(buf, big, BIG), "tm/big lost its bytes");
	WL_CHECK(!fstat(data_fd, &a) && !stat(wl_path("tm/big"), &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		 "the fd is not on the file tm/big names");
	WL_CHECK(!stat(wl_path("tm/hard"), &st) && st.st_ino == b.st_ino && st.st_nlink == 2, "tm/hard is no hard link");
	WL_CHECK(read_is(wl_path("tm/dir/sub/file"), "deep"), "tm/dir/sub/file");
	WL_CHECK(!stat(wl_path("tm/dir/sub/file"), &st) && (st.st_mode & 07777) == 0640, "file mode");
	WL_CHECK(!stat(wl_path("tm/dir"), &st) && (st.st_mode & 07777) == 0711, "dir mode");
	buf[0] = 0;
	WL_CHECK(readlink(wl_path("tm/link"), buf, 16) == 3 && !memcmp(buf, "big", 3), "tm/link");
	WL_CHECK(!lstat(wl_path("tm/fifo"), &st) && S_ISFIFO(st.st_mode), "tm/fifo is no FIFO");
	WL_CHECK(!stat(wl_path("tm/old"), &st) && st.st_mtime == MTIME, "tm/old mtime %ld", (long)st.st_mtime);
	/* The dump read it: that must not have counted as an access. */
	WL_CHECK(st.st_atime == MTIME, "tm/old atime %ld, set %d", (long)st.st_atime, MTIME);
	WL_CHECK(!strcmp(mapped, "through the mapping"), "the mapping reads \"%.20s\"", mapped);
	strcpy(mapped, "written after");
	{
		char m[32] = "";
		int fd = open(wl_path("tm/mapped"), O_RDONLY);

		WL_CHECK(fd >= 0 && read(fd, m, 13) == 13 && !memcmp(m, "written after", 13),
			 "the mapping is not shared with the file (it reads \"%s\")", m);
		close(fd);
	}
	{
		char t[8] = "";
		int fd = open(wl_path("tm/sparse"), O_RDONLY);

		WL_CHECK(fd >= 0 && !fstat(fd, &st) && st.st_size == SPARSE && st.st_blocks * 512 < (1 << 20),
			 "tm/sparse: size %ld, %ld blocks", (long)st.st_size, (long)st.st_blocks);
		WL_CHECK(pread(fd, t, 4, SPARSE / 2) == 4 && !memcmp(t, "tail", 4), "tm/sparse's tail");
		close(fd);
	}
	WL_CHECK(read_is(wl_path("tm/inner/file"), "inner"), "tm/inner/file");
	WL_CHECK(dev_of(wl_path("tm/inner")) != dev_of(wl_path("tm")), "tm/inner is no mount");
	WL_CHECK(dev_of(wl_path("peer")) == dev_of(wl_path("tm/inner")), "peer is not tm/inner's filesystem");
	WL_CHECK(read_is(wl_path("dirbind/sub/file"), "deep"), "dirbind does not show tm/dir");
	WL_CHECK(dev_of(wl_path("dirbind")) == dev_of(wl_path("tm")), "dirbind is not tm's filesystem");
	WL_CHECK(read_is(wl_path("robind/file"), "host"), "robind/file");
	WL_CHECK(open(wl_path("robind/new"), O_CREAT | O_WRONLY, 0600) < 0 && errno == EROFS, "robind is writable");
	/* Propagation: a mount under tm/inner shows under peer. */
	mkdir(wl_path("tm/inner/sub"), 0755);
	WL_CHECK(!mount("wl-sub", wl_path("tm/inner/sub"), "tmpfs", 0, "size=64k"), "mount under tm/inner");
	WL_CHECK(dev_of(wl_path("peer/sub")) == dev_of(wl_path("tm/inner/sub")) &&
			 dev_of(wl_path("peer/sub")) != dev_of(wl_path("peer")),
		 "a mount under tm/inner does not show under peer (not one peer group)");
	if (!strcmp(how, "ext")) {
		char want[64] = "";
		int fd = open(wl_path("ext-want"), O_RDONLY), n = -1;

		if (fd >= 0) {
			n = read(fd, want, sizeof(want) - 1);
			close(fd);
		}
		WL_CHECK(n > 0, "no marker to expect in ext-want");
		WL_CHECK(n > 0 && read_is(wl_path("ext/marker"), want), "ext/marker is not \"%s\"", want);
		if (getenv("WL_EXT_FILE"))
			WL_CHECK(n > 0 && read_is(wl_path("extfile"), want), "extfile is not \"%s\"", want);
	}
	if (!strcmp(how, "pivot")) {
		WL_CHECK(!statfs("/proc", &sf) && sf.f_type == PROC_MAGIC_NR, "/proc is no proc");
		WL_CHECK(access("/proc/self/status", R_OK) == 0, "/proc/self");
	}
	umount2(wl_path("tm/inner/sub"), MNT_DETACH);
}

int main(int argc, char **argv)
{
	const char *how = getenv("WL_MNT") ? getenv("WL_MNT") : "basic";

	wl_scratch(argc, argv);
	wl_install_term();
	setup(how);
	wl_ready();
	if (wl_selftest_break())
		write_file(wl_path("tm/dir/sub/file"), "lost", 4, 0640);
	wl_wait_for_term();
	check(how);
	return wl_finish();
}
